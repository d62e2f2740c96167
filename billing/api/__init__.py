"""The spend API: /spend/logs, /global/spend/report, /user/daily/activity (LiteLLM-compatible).

Per-request rows come from the usage ledger (UsageRecord); reports from the daily billing table
(DailyUsage), so a report never scans the ledger. Every route answers JSON, or a streamed CSV
with `?format=csv` or `Accept: text/csv` (csvexport.py). Who sees which rows is access.py's.
"""

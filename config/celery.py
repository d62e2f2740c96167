"""The Celery app. Without REDIS_URL, tasks run in-process (CELERY_TASK_ALWAYS_EAGER)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("tollgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# How often usage rows are counted into spend totals and the daily table (billing/rollup.py).
ROLLUP_SECONDS = float(os.environ.get("TOLLGATE_ROLLUP_SECONDS", "10"))

# One beat schedule lists every periodic job; billing adds its rollups here.
app.conf.beat_schedule = {
    # Budget periods end on exact UTC boundaries (tenants/durations.py); until this runs, the old
    # period's spend still counts. The shortest supported period is 30s, so every 10 s keeps a
    # reset at most ~10 s late (a third of the shortest period) while a run with nothing due is
    # one query per table. Runs are idempotent and safe to overlap (tenants/budgets.py).
    "reset-budgets": {"task": "billing.tasks.reset_budgets", "schedule": 10.0},
    # Spend totals and the daily table trail the ledger by at most this long (billing/rollup.py).
    "rollup-usage": {"task": "billing.tasks.rollup_usage", "schedule": ROLLUP_SECONDS},
    "purge-usage": {"task": "billing.tasks.purge_usage", "schedule": 3600.0},
    # Runs only when general_settings.background_health_checks is on, each health_check_interval
    # (proxy/health.py decides; this is how often it asks). A round probes every deployment.
    "background-health-checks": {"task": "proxy.tasks.background_health_checks", "schedule": 5.0},
}

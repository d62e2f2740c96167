"""The usage ledger: one row per request, written before the caller holds a complete answer.

`record` is step 6 of the hot path (DESIGN.md §1): one INSERT, in the transaction that commits
the request's spend on the rows that carry a limit (tenants/limits.py), so the ledger and the
counters it feeds never disagree about a request. It runs before a JSON answer is returned and
before a stream's `[DONE]` — and when the caller goes away mid-stream, for what was generated —
so no answer a client received is unbilled. Requests refused before any provider call (bad key,
bad body, unknown model, a limit) are recorded too, at zero cost (`refused`).

Everything derived — spend totals, the daily table, reports — is built from these rows by the
rollup (billing/rollup.py), never on the hot path.
"""

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F, Sum

from billing.models import Counted, UsageRecord

log = logging.getLogger("tollgate.usage")

ZERO = Decimal(0)
COUNTED_BY_KIND = {"key": Counted.KEY, "user": Counted.USER, "team": Counted.TEAM, "member": Counted.MEMBER}


@dataclass
class Outcome:
    """A finished (or refused) request, as the ledger stores it. Field names are the row's columns."""

    request_id: str
    started_at: float  # Unix time
    endpoint: str
    status: int
    latency_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    key_hash: str = ""
    key_id: int | None = None  # the key's row: its hash changes when it is regenerated
    key_name: str = ""
    team_id: str = ""
    user_id: str = ""
    end_user: str = ""
    model: str = ""
    model_group: str = ""  # the group that answered: `model`, or a fallback
    attempts: int = 0  # upstream calls made: retries and fallbacks included
    deployment_id: int | None = None
    provider: str = ""
    provider_model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    cost: Decimal = ZERO
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    price_source: str = ""
    stream: bool = False
    error_type: str = ""


COLUMNS = [f.name for f in fields(Outcome)] + ["ended_at", "total_tokens", "counted_on", "rolled_up"]


def record(outcome: Outcome, charged: tuple[str, ...] = ()) -> None:
    """Insert the usage row of `outcome`; `charged` names the tenant rows whose spend already has it.

    Runs inside the caller's transaction when there is one. The row is the record; a DEBUG log line
    (no key, no prompt) says the same for those who follow requests in the log.
    """
    counted = Counted.NONE
    for kind in charged:
        counted |= COUNTED_BY_KIND[kind]
    values = _values(outcome, counted)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(), [values[name] for name in COLUMNS])
    log.debug(
        "request=%s key=%s endpoint=%s model=%s deployment=%s provider=%s/%s stream=%s status=%s "
        "tokens=%d+%d%s cost=%s latency_ms=%.1f error=%s",
        outcome.request_id,
        outcome.key_name or "-",
        outcome.endpoint,
        outcome.model or "-",
        outcome.deployment_id,
        outcome.provider or "-",
        outcome.provider_model or "-",
        outcome.stream,
        outcome.status,
        outcome.prompt_tokens,
        outcome.completion_tokens,
        " (estimated)" if outcome.tokens_estimated else "",
        outcome.cost,
        outcome.latency_ms,
        outcome.error_type or "-",
    )


def _values(outcome: Outcome, counted: Counted) -> dict[str, Any]:
    values: dict[str, Any] = dict(outcome.__dict__)
    values["started_at"] = _moment(outcome.started_at)
    values["ended_at"] = _moment(outcome.started_at + outcome.latency_ms / 1000)
    values["total_tokens"] = outcome.prompt_tokens + outcome.completion_tokens
    values["counted_on"] = int(counted)
    values["rolled_up"] = False
    return values


def _moment(unix_time: float) -> datetime | str:
    """A timestamp column's value, as Django's backend would write it: SQLite stores naive UTC
    text (what `adapt_datetimefield_value` makes, without its per-call timezone work); PostgreSQL
    takes the aware datetime as it is."""
    moment = datetime.fromtimestamp(unix_time, UTC)
    return moment.replace(tzinfo=None).isoformat(" ") if connection.vendor == "sqlite" else moment


_sql: str | None = None


def _insert_sql() -> str:
    """One INSERT with every column, built once: the ORM's per-row work is not needed here."""
    global _sql
    if _sql is None:
        table = connection.ops.quote_name(UsageRecord._meta.db_table)
        names = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
        _sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    return _sql


def uncounted_spend(key_id: int, user_id: str | None, team_id: str | None) -> dict[str, Decimal]:
    """The cost of usage rows not yet in the spend of this key, its user, team and membership, by kind.

    With Redis, settled cost reaches those rows' `spend` only through the rollup; a budget counter
    Redis starts afresh (a restart, a flushed key) must start from spend *and* this.
    """
    whose: dict[str, dict[str, int | str | None]] = {
        "key": {"key_id": key_id},
        "user": {"user_id": user_id},
        "team": {"team_id": team_id},
        "member": {"team_id": team_id, "user_id": user_id},
    }
    sums = {}
    for kind, match in whose.items():
        if all(match.values()):
            rows = UsageRecord.objects.filter(rolled_up=False, **match)
            rows = rows.annotate(done=F("counted_on").bitand(int(COUNTED_BY_KIND[kind]))).filter(done=0)
            sums[kind] = rows.aggregate(total=Sum("cost"))["total"] or ZERO
    return sums

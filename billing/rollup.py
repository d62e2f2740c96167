"""Derive spend totals and the daily billing table from the usage ledger, exactly once per row.

The ledger (billing/ledger.py) is the truth; this turns new rows into:
- `spend` on the key, user, team and team membership a row names, where the hot path did not
  already add it (`UsageRecord.counted_on`: it does for rows that carry a limit, without Redis);
- `DailyUsage`: requests, errors, tokens and spend per UTC day, team, key, user, end user, model
  and provider — what reports and bills read.

Exactly once, whatever happens: each batch of rows is claimed, counted and marked `rolled_up` in
one transaction. A run killed half-way rolls its batch back and the next run takes it again; two
runs at once take different batches (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: writers take
turns). Running it again when nothing is pending changes nothing.

Locks are taken kind by kind (keys, users, teams, memberships, then the daily rows), each kind in a
fixed order, as the hot path's settle does (tenants/limits.py): the two never wait on each other
in a circle.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import Counted, DailyUsage, UsageRecord
from config import database
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

log = logging.getLogger(__name__)

DIMENSIONS = ("day", "team_id", "key_hash", "user_id", "end_user", "model", "provider")
MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "spend")
READ = (
    *("id", "ended_at", "team_id", "key_hash", "key_id", "user_id", "end_user", "model", "provider", "status"),
    *("prompt_tokens", "completion_tokens", "total_tokens", "cost", "counted_on"),
)


def run(*, batch_size: int | None = None, max_batches: int = 1000) -> int:
    """Roll up pending usage rows, batch after batch, until none is left; return how many."""
    size = batch_size or settings.TOLLGATE_ROLLUP_BATCH
    done = 0
    for _ in range(max_batches):
        rolled = roll_batch(size)
        done += rolled
        if rolled < size:
            break
    if done:
        log.info("rollup: %d usage rows counted", done)
    return done


def roll_batch(size: int) -> int:
    """Claim up to `size` pending rows, add them to spend and the daily table, mark them; one transaction."""
    with database.write_lock(), transaction.atomic():
        pending = UsageRecord.objects.filter(rolled_up=False).order_by("id")
        rows = list(pending.select_for_update(skip_locked=True).values(*READ)[:size])
        if not rows:
            return 0
        add_spend(rows)
        add_daily(rows)
        ids = [row["id"] for row in rows]
        UsageRecord.objects.filter(id__in=ids).update(rolled_up=True, counted_on=int(Counted.ALL))
    return len(rows)


def add_spend(rows: list[dict[str, Any]]) -> None:
    """Add each row's cost to the spend of every tenant row it names that does not have it yet."""
    by_key: dict[int, Decimal] = defaultdict(Decimal)
    by_user: dict[str, Decimal] = defaultdict(Decimal)
    by_team: dict[str, Decimal] = defaultdict(Decimal)
    by_member: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        cost, counted = row["cost"], Counted(row["counted_on"])
        if not cost:
            continue
        if row["key_id"] and Counted.KEY not in counted:
            by_key[row["key_id"]] += cost
        if row["user_id"] and Counted.USER not in counted:
            by_user[row["user_id"]] += cost
        if row["team_id"] and Counted.TEAM not in counted:
            by_team[row["team_id"]] += cost
        if row["team_id"] and row["user_id"] and Counted.MEMBER not in counted:
            by_member[(row["team_id"], row["user_id"])] += cost
    for key_id, amount in sorted(by_key.items()):
        VirtualKey.objects.filter(pk=key_id).update(spend=F("spend") + amount)
    for user_id, amount in sorted(by_user.items()):
        InternalUser.objects.filter(user_id=user_id).update(spend=F("spend") + amount)
    for team_id, amount in sorted(by_team.items()):
        Team.objects.filter(team_id=team_id).update(spend=F("spend") + amount)
    for (team_id, user_id), amount in sorted(by_member.items()):
        member = TeamMembership.objects.filter(team__team_id=team_id, user__user_id=user_id)
        TeamMembership.objects.filter(pk__in=member.values("pk")).update(spend=F("spend") + amount)


def add_daily(rows: list[dict[str, Any]]) -> None:
    """Add the rows to their day's figures: one upsert per (day, tenant, model, provider)."""
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0)])
    for row in rows:
        day = row["ended_at"].astimezone(UTC).date()
        key = (day, row["team_id"], row["key_hash"], row["user_id"], row["end_user"], row["model"], row["provider"])
        figures = totals[key]
        figures[0] += 1
        figures[1] += row["status"] >= 400
        figures[2] += row["prompt_tokens"]
        figures[3] += row["completion_tokens"]
        figures[4] += row["total_tokens"]
        figures[5] += row["cost"]
    ops = connection.ops
    params = [
        [ops.adapt_datefield_value(key[0]), *key[1:], *figures[:5], ops.adapt_decimalfield_value(figures[5])]
        for key, figures in sorted(totals.items())
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_upsert_sql(), params)


def purge(days: int | None = None, *, batch_size: int = 5000) -> int:
    """Delete rolled-up usage rows older than `days` (TOLLGATE_USAGE_RETENTION_DAYS; 0 keeps all).

    Only rows already counted in spend and the daily table go: the figures stay, the detail goes.
    Deletes in batches so no transaction holds the table for long.
    """
    days = settings.TOLLGATE_USAGE_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        with database.write_lock(), transaction.atomic():
            old = UsageRecord.objects.filter(rolled_up=True, ended_at__lt=cutoff).order_by("id")
            ids = list(old.values_list("id", flat=True)[:batch_size])
            if ids:
                UsageRecord.objects.filter(id__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch_size:
            break
    if deleted:
        log.info("retention: %d usage rows older than %d days deleted", deleted, days)
    return deleted


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(connection.ops.quote_name(name) for name in names)


def _upsert_sql() -> str:
    """INSERT … ON CONFLICT DO UPDATE adding to the figures: PostgreSQL and SQLite (3.24+) alike."""
    table = connection.ops.quote_name(DailyUsage._meta.db_table)
    columns = DIMENSIONS + MEASURES
    added = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in _quoted(MEASURES).split(", "))
    return (
        f"INSERT INTO {table} ({_quoted(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({_quoted(DIMENSIONS)}) DO UPDATE SET {added}"
    )

"""The figures the dashboard and the portal's usage page show, for a time window and a scope.

Spend and request counts come from the daily table (`DailyUsage`), which stays small whatever the
traffic; the ledger (`UsageRecord`) is read only where the daily table cannot answer: hourly
buckets for the last 24 hours, latency percentiles, and the recent-requests table, each bounded
by the window and an index (`ended_at`, or `team_id`/`key_hash` + `ended_at`).
"""

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.models import DailyUsage, UsageRecord
from tenants.models import InternalUser, Team, VirtualKey

RANGES = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}  # days
DEFAULT_RANGE = "7d"
TOP = 10
LATENCY_SAMPLE = 20_000  # newest answered requests the percentiles are read from
TABLE_ROWS = 2_500  # newest requests the paginated table reaches back to (100 pages)


@dataclass(frozen=True)
class Window:
    """The time span a page shows: the last 24 hours by the hour, else whole UTC days."""

    name: str
    start: dt.datetime
    end: dt.datetime
    days: int

    @property
    def hourly(self) -> bool:
        return self.days == 1

    @property
    def first_day(self) -> dt.date:
        return self.start.date()


def window(name: str | None, *, now: dt.datetime | None = None) -> Window:
    """The named range (24h, 7d, 30d, 90d); an unknown name is the default, never an error."""
    name = name if name in RANGES else DEFAULT_RANGE
    now = now or timezone.now()
    days = RANGES[name]
    if days == 1:
        return Window(name, now - dt.timedelta(hours=24), now, days)
    first = (now - dt.timedelta(days=days - 1)).date()
    return Window(name, dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC), now, days)


@dataclass(frozen=True)
class Scope:
    """Whose usage: everyone (both None), one team, or one key (by digest)."""

    team_id: str | None = None
    key_hash: str | None = None

    def filters(self) -> dict[str, str]:
        return {k: v for k, v in (("team_id", self.team_id), ("key_hash", self.key_hash)) if v is not None}


@dataclass
class Timeline:
    labels: list[str] = field(default_factory=list)
    spend: list[Decimal] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)


def daily(win: Window, scope: Scope) -> QuerySet[DailyUsage]:
    return DailyUsage.objects.filter(day__gte=win.first_day, day__lte=win.end.date(), **scope.filters())


def ledger(win: Window, scope: Scope) -> QuerySet[UsageRecord]:
    return UsageRecord.objects.filter(ended_at__gte=win.start, ended_at__lte=win.end, **scope.filters())


def timeline(win: Window, scope: Scope) -> Timeline:
    """Spend, requests and errors per bucket (hour or day), with empty buckets filled with zero."""
    buckets, labels, found = _hourly(win, scope) if win.hourly else _daily(win, scope)
    line = Timeline(labels=labels)
    for bucket in buckets:
        row = found.get(bucket, {})
        line.spend.append(row.get("spend") or Decimal(0))
        line.requests.append(row.get("requests") or 0)
        line.errors.append(row.get("errors") or 0)
    return line


def _hourly(win: Window, scope: Scope) -> tuple[list[Any], list[str], dict[Any, dict[str, Any]]]:
    """The last 24 hours from the ledger, by hour: the daily table is too coarse for them."""
    start = win.start.replace(minute=0, second=0, microsecond=0)
    buckets = [start + dt.timedelta(hours=h) for h in range(25) if start + dt.timedelta(hours=h) <= win.end]
    rows = (
        ledger(win, scope)
        .annotate(bucket=TruncHour("ended_at"))
        .values("bucket")
        .annotate(spend=Sum("cost"), requests=Count("id"), errors=Count("id", filter=Q(status__gte=400)))
    )
    return buckets, [f"{b:%H:00}" for b in buckets], {row["bucket"]: dict(row) for row in rows}


def _daily(win: Window, scope: Scope) -> tuple[list[Any], list[str], dict[Any, dict[str, Any]]]:
    buckets = [win.first_day + dt.timedelta(days=d) for d in range(win.days)]
    rows = (
        daily(win, scope)
        .order_by()
        .values("day")
        .annotate(spend=Sum("spend"), requests=Sum("requests"), errors=Sum("errors"))
    )
    return buckets, [f"{b:%b %d}" for b in buckets], {row["day"]: dict(row) for row in rows}


def totals(line: Timeline) -> dict[str, Any]:
    requests, errors = sum(line.requests), sum(line.errors)
    return {
        "spend": sum(line.spend, Decimal(0)),
        "requests": requests,
        "errors": errors,
        "error_rate": errors / requests if requests else 0.0,
    }


def latency(win: Window, scope: Scope, *, sample: int = LATENCY_SAMPLE) -> dict[str, Any]:
    """p50 and p95 (nearest rank) of the latency of the window's latest `sample` answered requests.

    One indexed read of at most `sample` numbers, however busy the window was: the newest
    requests are what an operator looks at, and 20,000 of them pin a p95 well. Failed requests
    are left out: one refused at admission answers in a millisecond and would pull the
    percentiles down exactly when something is wrong.
    """
    answered = ledger(win, scope).filter(status__lt=400).order_by("-ended_at")
    values = sorted(answered.values_list("latency_ms", flat=True)[:sample])
    n = len(values)
    result: dict[str, Any] = {"count": n, "sampled": n == sample, "p50": None, "p95": None}
    for name, p in (("p50", 0.50), ("p95", 0.95)):
        if n:
            result[name] = values[max(0, math.ceil(p * n) - 1)]
    return result


def breakdown(win: Window, scope: Scope, column: str, *, limit: int = TOP) -> list[dict[str, Any]]:
    """The biggest spenders by `column` (team_id, model, key_hash, user_id), dearest first."""
    return list(
        daily(win, scope)
        .order_by()
        .values(column)
        .annotate(spend=Sum("spend"), requests=Sum("requests"), errors=Sum("errors"))
        .order_by("-spend", "-requests")[:limit]
    )


def name_teams(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = dict(Team.objects.filter(team_id__in=[r["team_id"] for r in rows]).values_list("team_id", "team_alias"))
    for row in rows:
        row["label"] = names.get(row["team_id"]) or row["team_id"] or "(no team)"
        row["exists"] = row["team_id"] in names
    return rows


def name_keys(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label each digest with its key's alias or hint; the digest itself is never shown."""
    found = {
        k["token"]: k
        for k in VirtualKey.objects.filter(token__in=[r["key_hash"] for r in rows]).values(
            "token", "pk", "key_name", "key_alias"
        )
    }
    for row in rows:
        key = found.get(row["key_hash"])
        row["key_pk"] = key["pk"] if key else None
        if key:
            row["label"] = f"{key['key_alias']} ({key['key_name']})" if key["key_alias"] else key["key_name"]
        else:
            row["label"] = "(master key)" if not row["key_hash"] else "(deleted key)"
    return rows


def name_users(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    emails = dict(
        InternalUser.objects.filter(user_id__in=[r["user_id"] for r in rows]).values_list("user_id", "user_email")
    )
    for row in rows:
        row["label"] = emails.get(row["user_id"]) or row["user_id"] or "(no user)"
    return rows


def recent(win: Window, scope: Scope) -> QuerySet[UsageRecord]:
    """The window's newest requests, newest first, for a paginated table: at most TABLE_ROWS, so
    counting the pages stays cheap on a busy ledger (exports and /spend/logs reach further)."""
    return ledger(win, scope).order_by("-ended_at", "-id")[:TABLE_ROWS]

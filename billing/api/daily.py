"""Reading the daily billing table for reports: the rows a caller may see, summed by dimension.

Reports never read the ledger: DailyUsage already holds one row per day, team, key, user, end
user, model and provider, so summing it by fewer dimensions is all a report needs.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from billing.api import access
from billing.models import DailyUsage
from tenants.auth import Caller
from tenants.models import Team, VirtualKey

METRICS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "spend")


def rows(caller: Caller, start: dt.date, end: dt.date, **filters: str | None) -> QuerySet[DailyUsage]:
    """The days from `start` to `end` (both included) the caller may see, narrowed by `filters`
    (column=value; a filter given as None is not applied)."""
    found = access.restrict(DailyUsage.objects.filter(day__gte=start, day__lte=end), caller)
    applied = {column: value for column, value in filters.items() if value is not None}
    return found.filter(**applied) if applied else found


def summed(found: QuerySet[DailyUsage], by: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per distinct value of the `by` columns, with every metric summed, in `by` order."""
    return list(found.order_by().values(*by).annotate(**{metric: Sum(metric) for metric in METRICS}).order_by(*by))


def money(value: Decimal | None) -> float:
    return float(value or 0)


def team_names(team_ids: Iterable[str]) -> dict[str, str]:
    """team_id → team_alias, for the teams that still exist and have one."""
    wanted = {t for t in team_ids if t}
    if not wanted:
        return {}
    return dict(Team.objects.filter(team_id__in=wanted).exclude(team_alias="").values_list("team_id", "team_alias"))


def key_details(digests: Iterable[str]) -> dict[str, dict[str, Any]]:
    """digest → LiteLLM's key metadata (`key_alias`, `team_id`, `user_id`, `key_exists`)."""
    wanted = {d for d in digests if d}
    found = VirtualKey.objects.filter(token__in=wanted).values_list(
        "token", "key_alias", "team__team_id", "user__user_id"
    )
    details = {
        token: {"key_alias": alias or None, "team_id": team, "user_id": user, "key_exists": True}
        for token, alias, team, user in found
    }
    for digest in wanted - details.keys():
        details[digest] = {"key_alias": None, "team_id": None, "user_id": None, "key_exists": False}
    return details

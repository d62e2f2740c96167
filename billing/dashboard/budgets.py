"""Budgets near their limit: how much is left, how fast it goes, and when it will run out.

The burn rate is the average daily spend over the last seven UTC days (today included) from the
daily table, so one expensive hour does not swing it. A budget is listed when most of it is used
or when it will run out within a week at that rate — unless its period resets first, which the
row says.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Sum
from django.utils import timezone

from billing.models import DailyUsage
from tenants.models import Team, VirtualKey

BURN_DAYS = 7
NEARLY_USED = Decimal("0.8")
SOON = dt.timedelta(days=7)
CANDIDATES = 100  # the most-used budgets considered, so the page costs the same with many teams


@dataclass(frozen=True)
class BudgetRow:
    kind: str  # "team" or "key"
    label: str
    pk: int
    ident: str  # team_id, for links
    max_budget: Decimal
    spend: Decimal
    burn_per_day: Decimal
    exhausted_on: dt.date | None  # at the current burn rate; None when nothing is being spent
    resets_at: dt.datetime | None

    @property
    def left(self) -> Decimal:
        return max(Decimal(0), self.max_budget - self.spend)

    @property
    def used(self) -> float:
        return float(self.spend / self.max_budget) if self.max_budget else 1.0

    @property
    def resets_first(self) -> bool:
        return bool(self.resets_at and self.exhausted_on and self.resets_at.date() <= self.exhausted_on)


def near_limit(*, now: dt.datetime | None = None, limit: int = 20) -> list[BudgetRow]:
    """Teams and keys whose budget is mostly used or will run out within a week, most urgent first."""
    now = now or timezone.now()
    since = now.date() - dt.timedelta(days=BURN_DAYS - 1)
    recent = DailyUsage.objects.filter(day__gte=since, day__lte=now.date()).order_by()
    rows: list[BudgetRow] = []
    teams = _most_used(Team.objects.all())
    team_burn = _burn(recent.filter(team_id__in=[t.team_id for t in teams]), "team_id")
    for team in teams:
        rows.append(_row("team", str(team), team.pk, team.team_id, team, team_burn.get(team.team_id), now))
    keys = _most_used(VirtualKey.objects.all())
    key_burn = _burn(recent.filter(key_hash__in=[k.token for k in keys]), "key_hash")
    for key in keys:
        label = f"{key.key_alias} ({key.key_name})" if key.key_alias else key.key_name
        rows.append(_row("key", label, key.pk, str(key.pk), key, key_burn.get(key.token), now))
    soon = now.date() + SOON
    urgent = [
        r
        for r in rows
        if r.used >= NEARLY_USED or (r.exhausted_on is not None and r.exhausted_on <= soon and not r.resets_first)
    ]
    urgent.sort(key=lambda r: (r.exhausted_on or dt.date.max, -r.used))
    return urgent[:limit]


def _most_used(rows):
    ratio = ExpressionWrapper(F("spend") / F("max_budget"), output_field=DecimalField(max_digits=30, decimal_places=10))
    return list(rows.filter(max_budget__gt=0).annotate(ratio=ratio).order_by("-ratio")[:CANDIDATES])


def _burn(daily, column: str) -> dict[str, Decimal]:
    sums = daily.values(column).annotate(total=Sum("spend")).values_list(column, "total")
    return {ident: (total or Decimal(0)) / BURN_DAYS for ident, total in sums}


def _row(kind: str, label: str, pk: int, ident: str, owner, burn: Decimal | None, now: dt.datetime) -> BudgetRow:
    burn = burn or Decimal(0)
    left = max(Decimal(0), owner.max_budget - owner.spend)
    if left == 0:
        exhausted_on: dt.date | None = now.date()
    elif burn > 0:
        exhausted_on = now.date() + dt.timedelta(days=min(int(left / burn), 3650))
    else:
        exhausted_on = None
    return BudgetRow(
        kind=kind,
        label=label,
        pk=pk,
        ident=ident,
        max_budget=owner.max_budget,
        spend=owner.spend,
        burn_per_day=burn,
        exhausted_on=exhausted_on,
        resets_at=owner.budget_reset_at,
    )

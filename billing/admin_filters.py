"""List filters for the usage ledger: typed values and a date range, never a DISTINCT over it.

Django's own filters list every distinct value of a column, which over a ledger of millions of
rows is a full scan per page view. These take what the operator types (a key's `sk-...abcd`
hint, a model alias) or pick from the small tenants tables (teams), and filter on indexed
columns where there is one.
"""

import datetime as dt
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.models import Team

TEMPLATE = "admin/billing/input_filter.html"


class InputFilter(admin.ListFilter):
    """A filter the operator types into; each parameter is one input of a small GET form."""

    template = TEMPLATE
    inputs: tuple[tuple[str, str, str], ...] = ()  # (parameter, label, input type)

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.request = request
        self.values: dict[str, str] = {}
        for name, _, _ in self.inputs:
            if name in params:
                value = params.pop(name)
                self.values[name] = (value[-1] if isinstance(value, list) else value).strip()

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [name for name, _, _ in self.inputs]

    def choices(self, changelist: Any) -> Any:
        mine = {name for name, _, _ in self.inputs}
        yield {
            "inputs": [(name, label, kind, self.values.get(name, "")) for name, label, kind in self.inputs],
            "others": [(k, v) for k, v in self.request.GET.items() if k not in mine and k != "p"],
            "clear_url": changelist.get_query_string(remove=list(mine)),
            "active": bool(self.values),
        }


class ExactFilter(InputFilter):
    """Rows whose `column` is exactly what was typed."""

    column = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = next(iter(self.values.values()), "")
        return queryset.filter(**{self.column: value}) if value else queryset


class KeyFilter(ExactFilter):
    title = "key"
    column = "key_name"
    inputs = (("key_name", "sk-...abcd", "text"),)


class ModelFilter(ExactFilter):
    title = "model"
    column = "model"
    inputs = (("model", "alias", "text"),)


class DateRangeFilter(InputFilter):
    """From one UTC day through another, both included."""

    title = "date range (UTC)"
    inputs = (("from", "from", "date"), ("to", "to", "date"))
    column = "ended_at"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        start, end = self._day("from"), self._day("to")
        if start is not None:
            queryset = queryset.filter(**{f"{self.column}__gte": start})
        if end is not None:
            queryset = queryset.filter(**{f"{self.column}__lt": end + dt.timedelta(days=1)})
        return queryset

    def _day(self, name: str) -> dt.datetime | None:
        value = self.values.get(name)
        if not value:
            return None
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise IncorrectLookupParameters(f"{name}: not a date (YYYY-MM-DD)") from None
        return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class DayRangeFilter(DateRangeFilter):
    """The same range over the daily table's `day` column."""

    column = "day"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        start, end = self._day("from"), self._day("to")
        if start is not None:
            queryset = queryset.filter(day__gte=start.date())
        if end is not None:
            queryset = queryset.filter(day__lte=end.date())
        return queryset


class TeamFilter(admin.SimpleListFilter):
    """By team, chosen from the teams table (the ledger keeps the team id as text)."""

    title = "team"
    parameter_name = "team_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t.team_id, str(t)) for t in Team.objects.only("team_id", "team_alias")[:500]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(team_id=self.value()) if self.value() else queryset

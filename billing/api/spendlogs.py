"""GET /spend/logs: the usage ledger, one row per request, newest first.

LiteLLM answers a bare array of every matching row. Tollgate keeps the bare array for the call
without `page` (at most MAX_LISTED rows, with `X-Total-Count` saying how many matched), and
answers LiteLLM's paginated form (`/spend/logs/ui`: `{data, total, page, page_size,
total_pages}`) once `page` or `page_size` is given. Filters combine (LiteLLM uses only the first
of api_key, request_id, user_id); `summarize=true` gives LiteLLM's per-day summary instead.
"""

import datetime as dt
from typing import Any

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api import access, csvexport, logrows
from billing.api.inputs import Bound, DateRange, KeyHashField, PageInput, day_of, since, total_pages, until
from billing.models import UsageRecord
from tenants.api.shapes import validated
from tenants.auth import Caller

MAX_LISTED = PageInput.MAX_PAGE_SIZE
FILTERS = {"request_id": "request_id", "api_key": "key_hash", "user_id": "user_id", "team_id": "team_id"}
DESCRIBED = (
    "A bare array of spend-log rows (at most 1000, X-Total-Count says how many matched); with page or "
    "page_size {data, total, page, page_size, total_pages}; with summarize=true LiteLLM's per-day summary; "
    "text/csv with format=csv."
)


class SpendLogsInput(DateRange, PageInput):
    start_date = Bound(instants=True)
    end_date = Bound(instants=True)
    request_id = serializers.CharField(max_length=64, required=False)
    api_key = KeyHashField()
    user_id = serializers.CharField(max_length=255, required=False)
    team_id = serializers.CharField(max_length=255, required=False)
    summarize = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs["summarize"] and (attrs.get("start_date") is None or attrs.get("end_date") is None):
            raise serializers.ValidationError({"start_date": "summarize=true needs start_date and end_date."})
        return attrs


def matching(caller: Caller, data: dict[str, Any]) -> QuerySet[UsageRecord]:
    """The rows the filters select among those the caller may see; a day is the day a request ended."""
    rows = access.restrict(UsageRecord.objects.all(), caller)
    for field, column in FILTERS.items():
        if field in data:
            rows = rows.filter(**{column: data[field]})
    if data.get("start_date") is not None:
        rows = rows.filter(ended_at__gte=since(data["start_date"]))
    if data.get("end_date") is not None:
        rows = rows.filter(ended_at__lt=until(data["end_date"]))
    return rows.order_by("-ended_at", "-pk")


class SpendLogsView(csvexport.SpendView):
    """GET /spend/logs: who called what, when, for how much. `?format=csv` streams every row."""

    @extend_schema(parameters=[SpendLogsInput], responses={200: OpenApiResponse(description=DESCRIBED)}, tags=["spend"])
    def get(self, request: Request) -> HttpResponseBase:
        data = validated(SpendLogsInput, request.query_params)
        rows = matching(self.caller, data)
        if data["summarize"]:
            return self.summary(rows, data)
        paged = "page" in data or "page_size" in data
        page, size = data.get("page", 1), data.get("page_size", PageInput.DEFAULT_PAGE_SIZE)
        chosen = rows[(page - 1) * size : page * size] if paged else rows
        if self.wants_csv():
            return csvexport.stream("spend-logs.csv", logrows.CSV_COLUMNS, logrows.as_csv(chosen.iterator(2000)))
        if paged:
            total = rows.count()
            shaped = [logrows.as_log(row) for row in chosen]
            return Response(
                {
                    "data": shaped,
                    "total": total,
                    "page": page,
                    "page_size": size,
                    "total_pages": total_pages(total, size),
                }
            )
        listed = list(rows[: MAX_LISTED + 1])
        total = len(listed) if len(listed) <= MAX_LISTED else rows.count()
        return Response([logrows.as_log(row) for row in listed[:MAX_LISTED]], headers={"X-Total-Count": str(total)})

    def summary(self, rows: QuerySet[UsageRecord], data: dict[str, Any]) -> HttpResponseBase:
        """LiteLLM's summarised form: per day, the spend in all, per key digest, per user, per model."""
        grouped = (
            rows.order_by()
            .annotate(day=TruncDate("ended_at", tzinfo=dt.UTC))
            .values("day", "key_hash", "user_id", "model")
            .annotate(spend=Sum("cost"))
            .order_by("day", "key_hash", "user_id", "model")
        )
        if self.wants_csv():
            cells = ([g["day"], g["key_hash"], g["user_id"], g["model"], g["spend"]] for g in grouped)
            return csvexport.stream("spend-summary.csv", ["date", "api_key", "user", "model", "spend"], cells)
        first, last = day_of(data["start_date"]), day_of(data["end_date"])
        days = {first + dt.timedelta(days=n): _empty_day() for n in range((last - first).days + 1)}
        for g in grouped:
            day, spend = days.setdefault(g["day"], _empty_day()), float(g["spend"] or 0)
            day["spend"] += spend
            day[g["key_hash"]] = day.get(g["key_hash"], 0.0) + spend
            day["users"][g["user_id"]] = day["users"].get(g["user_id"], 0.0) + spend
            day["models"][g["model"]] = day["models"].get(g["model"], 0.0) + spend
        return Response([{"startTime": day.isoformat(), **totals} for day, totals in sorted(days.items())])


def _empty_day() -> dict[str, Any]:
    return {"spend": 0.0, "users": {}, "models": {}}

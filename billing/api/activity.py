"""GET /user/daily/activity: usage per day with its split by model, provider and key (LiteLLM's
`SpendAnalyticsPaginatedResponse`), from the daily billing table.

`{"results": [{date, metrics, breakdown: {models, model_groups, providers, api_keys, …}}],
"metadata": {total_spend, total_api_requests, …, page, total_pages, has_more}}`, newest day
first. LiteLLM pages through its table's rows, so one day can straddle two pages; Tollgate pages
through days (`page_size` days a page), so every result is a whole day. As in LiteLLM, the
metadata totals are those of the page: summing them over the pages gives the range's totals.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.http import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api import csvexport, daily
from billing.api.inputs import DateRange, KeyHashField, PageInput, total_pages
from tenants.api.shapes import validated

SPLIT = ("day", "model", "provider", "key_hash")
BREAKDOWNS = ("models", "model_groups", "mcp_servers", "providers", "endpoints", "api_keys", "entities")


DESCRIBED = "LiteLLM's SpendAnalyticsPaginatedResponse {results, metadata}; text/csv with format=csv."


class ActivityInput(DateRange, PageInput):
    required_dates = True

    model = serializers.CharField(max_length=255, required=False)
    api_key = KeyHashField()
    user_id = serializers.CharField(max_length=255, required=False)
    team_id = serializers.CharField(max_length=255, required=False)


class Tally:
    """LiteLLM's `SpendMetrics`, summed exactly (spend in Decimal) until it is shown."""

    def __init__(self) -> None:
        self.spend = Decimal(0)
        self.prompt_tokens = self.completion_tokens = self.total_tokens = self.requests = self.errors = 0

    def add(self, s: dict[str, Any]) -> None:
        self.spend += s["spend"] or 0
        self.prompt_tokens += s["prompt_tokens"] or 0
        self.completion_tokens += s["completion_tokens"] or 0
        self.total_tokens += s["total_tokens"] or 0
        self.requests += s["requests"] or 0
        self.errors += s["errors"] or 0

    def shown(self) -> dict[str, Any]:
        return {
            "spend": float(self.spend),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "api_requests": self.requests,
            "successful_requests": self.requests - self.errors,
            "failed_requests": self.errors,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }


class UserDailyActivityView(csvexport.SpendView):
    """GET /user/daily/activity?start_date=&end_date=[&model=&api_key=&user_id=&team_id=&page=&page_size=]."""

    @extend_schema(parameters=[ActivityInput], responses={200: OpenApiResponse(description=DESCRIBED)}, tags=["spend"])
    def get(self, request: Request) -> HttpResponseBase:
        data = validated(ActivityInput, request.query_params)
        found = daily.rows(
            self.caller,
            data["start_date"],
            data["end_date"],
            model=data.get("model"),
            key_hash=data.get("api_key"),
            user_id=data.get("user_id"),
            team_id=data.get("team_id"),
        )
        days = list(found.order_by("-day").values_list("day", flat=True).distinct())
        page, size = data.get("page", 1), data.get("page_size", PageInput.DEFAULT_PAGE_SIZE)
        paged = "page" in data or "page_size" in data
        if self.wants_csv():
            chosen = found.filter(day__in=days[(page - 1) * size : page * size]) if paged else found
            header = ["date", "model", "provider", "api_key", *daily.METRICS]
            cells = ([s[c] for c in SPLIT] + [s[m] for m in daily.METRICS] for s in daily.summed(chosen, SPLIT))
            return csvexport.stream("daily-activity.csv", header, cells)
        on_page = days[(page - 1) * size : page * size]
        sums = daily.summed(found.filter(day__in=on_page), SPLIT) if on_page else []
        results, totals = shaped(sums)
        metadata = {
            "total_tokens" if name == "total_tokens" else f"total_{name}": value
            for name, value in totals.shown().items()
        }
        metadata.update(page=page, total_pages=total_pages(len(days), size), has_more=page * size < len(days))
        return Response({"results": results, "metadata": metadata})


def shaped(sums: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], Tally]:
    """The per-day results, newest first, and the totals over them."""
    sums = list(sums)
    keys = daily.key_details(s["key_hash"] for s in sums)
    days: dict[Any, dict[str, Any]] = {}
    totals = Tally()
    for s in sums:
        day = days.setdefault(s["day"], {"metrics": Tally(), "breakdown": {name: {} for name in BREAKDOWNS}})
        key_metadata = keys.get(
            s["key_hash"], {"key_alias": None, "team_id": None, "user_id": None, "key_exists": False}
        )
        for tally in (totals, day["metrics"]):
            tally.add(s)
        breakdown = day["breakdown"]
        for name in ("models", "model_groups"):
            model = breakdown[name].setdefault(s["model"], _bucket())
            model["metrics"].add(s)
            split = model["api_key_breakdown"].setdefault(s["key_hash"], {"metrics": Tally(), "metadata": key_metadata})
            split["metrics"].add(s)
        breakdown["providers"].setdefault(s["provider"] or "unknown", _bucket())["metrics"].add(s)
        breakdown["api_keys"].setdefault(s["key_hash"], {"metrics": Tally(), "metadata": key_metadata})["metrics"].add(
            s
        )
    results = [
        {"date": day.isoformat(), "metrics": entry["metrics"].shown(), "breakdown": _shown(entry["breakdown"])}
        for day, entry in sorted(days.items(), reverse=True)
    ]
    return results, totals


def _bucket() -> dict[str, Any]:
    return {"metrics": Tally(), "metadata": {}, "api_key_breakdown": {}}


def _shown(value: Any) -> Any:
    """The breakdown with every Tally turned into its JSON form."""
    if isinstance(value, Tally):
        return value.shown()
    if isinstance(value, dict):
        return {name: _shown(inner) for name, inner in value.items()}
    return value

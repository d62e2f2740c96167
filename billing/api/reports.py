"""GET /global/spend/report: spend over a date range, grouped by team, customer, key or model.

LiteLLM's shapes (docs/litellm-management-api.md §9), read from the daily billing table:

- `team` (default) and `customer`: per day, per team (or end user), the total and its split by
  model and key;
- `api_key` (the default when `api_key` or `internal_user_id` is given): per key, the total and
  its split by model, dearest first;
- `model` (Tollgate's own): per model alias, the total and its split by key, dearest first.

LiteLLM serves this to Enterprise licences only; Tollgate to every caller, each seeing only
their own rows (access.py). Filters narrow; they never change the shape.
"""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.http import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api import csvexport, daily
from billing.api.inputs import DateRange, KeyHashField
from tenants.api.shapes import validated

UNASSIGNED_TEAM = "Unassigned Team"  # LiteLLM's name for spend outside any team
# Columns each grouping sums by; the first one or two are the groups, the rest the split.
GROUPINGS = {
    "team": ("day", "team_id", "model", "key_hash"),
    "customer": ("day", "end_user", "model", "key_hash"),
    "api_key": ("key_hash", "model"),
    "model": ("model", "key_hash"),
}
CSV_NAMES = {"day": "date", "key_hash": "api_key", "end_user": "customer"}


DESCRIBED = "LiteLLM's spend report (a bare array, shaped by group_by); text/csv with format=csv."


class ReportInput(DateRange):
    required_dates = True

    group_by = serializers.ChoiceField(choices=tuple(GROUPINGS), required=False)
    api_key = KeyHashField()
    internal_user_id = serializers.CharField(max_length=255, required=False)
    team_id = serializers.CharField(max_length=255, required=False)
    customer_id = serializers.CharField(max_length=255, required=False)


class GlobalSpendReportView(csvexport.SpendView):
    """GET /global/spend/report?start_date=&end_date=[&group_by=team|customer|api_key|model]."""

    @extend_schema(parameters=[ReportInput], responses={200: OpenApiResponse(description=DESCRIBED)}, tags=["spend"])
    def get(self, request: Request) -> HttpResponseBase:
        data = validated(ReportInput, request.query_params)
        keyed = "api_key" in data or "internal_user_id" in data
        group_by = data.get("group_by") or ("api_key" if keyed else "team")
        found = daily.rows(
            self.caller,
            data["start_date"],
            data["end_date"],
            key_hash=data.get("api_key"),
            user_id=data.get("internal_user_id"),
            team_id=data.get("team_id"),
            end_user=data.get("customer_id"),
        )
        by = GROUPINGS[group_by]
        sums = daily.summed(found, by)
        if self.wants_csv():
            return self.csv(group_by, by, sums)
        return Response(SHAPES[group_by](sums))

    def csv(self, group_by: str, by: tuple[str, ...], sums: list[dict[str, Any]]) -> HttpResponseBase:
        names = daily.team_names(s["team_id"] for s in sums) if group_by == "team" else {}
        header = [CSV_NAMES.get(column, column) for column in by] + list(daily.METRICS)
        if group_by == "team":
            header.insert(2, "team_name")
        cells = []
        for s in sums:
            row = [s[column] for column in by] + [s[metric] for metric in daily.METRICS]
            if group_by == "team":
                row.insert(2, team_name(names, s["team_id"]))
            cells.append(row)
        return csvexport.stream(f"spend-report-{group_by}.csv", header, cells)


def team_name(names: dict[str, str], team_id: str) -> str:
    return names.get(team_id, team_id) if team_id else UNASSIGNED_TEAM


def by_day(sums: list[dict[str, Any]], group: str, plural: str, label: Callable[[str], dict]) -> list[dict]:
    """`[{group_by_day, <plural>: [{<label>, total_spend, metadata: [...]}]}]`, days in order."""
    days: dict[dt.date, dict[str, dict[str, Any]]] = {}
    for s in sums:
        entry = days.setdefault(s["day"], {}).setdefault(
            s[group], {**label(s[group]), "total_spend": 0.0, "metadata": []}
        )
        entry["total_spend"] += daily.money(s["spend"])
        entry["metadata"].append(
            {
                "model": s["model"],
                "api_key": s["key_hash"],
                "spend": daily.money(s["spend"]),
                "total_tokens": s["total_tokens"],
                "prompt_tokens": s["prompt_tokens"],
                "completion_tokens": s["completion_tokens"],
                "api_requests": s["requests"],
            }
        )
    return [
        {
            "group_by_day": f"{day.isoformat()}T00:00:00Z",
            plural: sorted(
                ({**e, "metadata": sorted(e["metadata"], key=_by_spend)} for e in groups.values()),
                key=lambda e: -e["total_spend"],
            ),
        }
        for day, groups in sorted(days.items())
    ]


def _by_spend(entry: dict[str, Any]) -> float:
    return -entry["spend"]


def by_team(sums: list[dict[str, Any]]) -> list[dict]:
    names = daily.team_names(s["team_id"] for s in sums)
    return by_day(sums, "team_id", "teams", lambda t: {"team_id": t or None, "team_name": team_name(names, t)})


def by_customer(sums: list[dict[str, Any]]) -> list[dict]:
    return by_day(sums, "end_user", "customers", lambda c: {"customer": c or None})


def ranked(sums: list[dict[str, Any]], group: tuple[str, str], split: tuple[str, str], details: str) -> list[dict]:
    """`[{<group>, total_cost, total_input_tokens, total_output_tokens, <details>: [...]}]`, dearest
    first. `group` and `split` are (column, name in the answer)."""
    (column, name), (split_column, split_name) = group, split
    groups: dict[str, dict[str, Any]] = {}
    for s in sums:
        entry = groups.setdefault(s[column], {name: s[column], **_costs(None), details: []})
        for field, value in _costs(s).items():
            entry[field] += value
        entry[details].append({split_name: s[split_column], **_costs(s)})
    for entry in groups.values():
        entry[details].sort(key=lambda d: -d["total_cost"])
    return sorted(groups.values(), key=lambda e: -e["total_cost"])


def _costs(s: dict[str, Any] | None) -> dict[str, Any]:
    if s is None:
        return {"total_cost": 0.0, "total_input_tokens": 0, "total_output_tokens": 0}
    return {
        "total_cost": daily.money(s["spend"]),
        "total_input_tokens": s["prompt_tokens"],
        "total_output_tokens": s["completion_tokens"],
    }


SHAPES: dict[str, Callable[[list[dict[str, Any]]], list[dict]]] = {
    "team": by_team,
    "customer": by_customer,
    "api_key": lambda sums: ranked(sums, ("key_hash", "api_key"), ("model", "model"), "model_details"),
    "model": lambda sums: ranked(sums, ("model", "model"), ("key_hash", "api_key"), "api_key_details"),
}

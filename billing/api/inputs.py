"""Query parameters the spend routes share: dates, a key named raw or hashed, pages.

Dates are UTC calendar days (`YYYY-MM-DD`), both ends included: `end_date=2025-01-31` covers the
whole of the 31st (LiteLLM's /spend/logs stops at 00:00 of the end date; see
docs/compatibility.md). A bad date or a range that ends before it starts is a 400 naming the field.
"""

import datetime as dt
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import keys
from tenants.api.shapes import MAX_INT


class KeyHashField(serializers.CharField):
    """A key as `sk-...` or its SHA-256 digest, as LiteLLM accepts both; always read as the digest."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=256, required=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        return keys.token_of(super().to_internal_value(data))


@extend_schema_field(OpenApiTypes.STR)
class Bound(serializers.Field):
    """A date (the whole UTC day) or, where `instants` is set, an exact time as LiteLLM's UI sends
    it (`2025-01-31 12:00:00`, UTC unless an offset is given)."""

    default_error_messages = {"invalid": "Use YYYY-MM-DD{instants}."}

    def __init__(self, *, instants: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "YYYY-MM-DD (UTC)" + (" or YYYY-MM-DD HH:MM:SS" if instants else ""))
        super().__init__(**kwargs)
        self.instants = instants

    def to_internal_value(self, data: Any) -> dt.date | dt.datetime:
        text = str(data).strip()
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else self._instant(text)
        except ValueError:
            hint = " (or YYYY-MM-DD HH:MM:SS, UTC)" if self.instants else ""
            self.fail("invalid", instants=hint)
        raise AssertionError  # fail() raises

    def _instant(self, text: str) -> dt.datetime:
        if not self.instants:
            raise ValueError(text)
        moment = dt.datetime.fromisoformat(text)
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)

    def to_representation(self, value: Any) -> str:
        return str(value)


class DateRange(serializers.Serializer):
    """`start_date` and `end_date`, optional unless `required_dates` is set on the subclass."""

    required_dates = False

    start_date = Bound()
    end_date = Bound()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start_date"), attrs.get("end_date")
        if self.required_dates and (start is None or end is None):
            missing = "start_date" if start is None else "end_date"
            raise serializers.ValidationError({missing: "Please provide start_date and end_date (YYYY-MM-DD)."})
        if start is not None and end is not None and since(start) >= until(end):
            raise serializers.ValidationError({"end_date": "end_date is before start_date."})
        return attrs


def since(bound: dt.date | dt.datetime) -> dt.datetime:
    """The first instant a start bound covers."""
    if isinstance(bound, dt.datetime):
        return bound
    return dt.datetime.combine(bound, dt.time.min, tzinfo=dt.UTC)


def until(bound: dt.date | dt.datetime) -> dt.datetime:
    """The first instant after an end bound: a date covers its whole day, an instant itself."""
    if isinstance(bound, dt.datetime):
        return bound + dt.timedelta(microseconds=1)
    return dt.datetime.combine(bound + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


def day_of(bound: dt.date | dt.datetime) -> dt.date:
    return bound.date() if isinstance(bound, dt.datetime) else bound


class PageInput(serializers.Serializer):
    """`page` (from 1) and `page_size` (up to MAX_PAGE_SIZE)."""

    DEFAULT_PAGE_SIZE = 50
    MAX_PAGE_SIZE = 1000

    page = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


def total_pages(total: int, page_size: int) -> int:
    return -(-total // page_size)

"""The price book admins edit (billing.ModelPrice), read from memory on the hot path.

Admission and settling price every request, so a lookup must not query the database. Each worker
keeps every ModelPrice row in memory (a few hundred) and checks a cheap fingerprint of the table
(row count, last change) at most every TOLLGATE_PRICE_CACHE_SECONDS, so an admin's edit reaches
every worker within that time. Rows are kept with their effective dates and the one in effect is
chosen at each lookup: a price scheduled for midnight applies at midnight without a reload. A save
or delete in this process invalidates at once (billing/apps.py).
"""

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from billing.models import ModelPrice
from billing.prices import Listed
from config.database import release_connection


@dataclass(frozen=True)
class Row:
    effective_from: datetime
    listed: Listed


@dataclass
class Table:
    fingerprint: tuple = ()
    checked_at: float = -math.inf  # never: time.monotonic() may start near 0
    # (price list, model id) → its rows, newest effective_from first.
    rows: dict[tuple[str, str], tuple[Row, ...]] = field(default_factory=dict)


_table = Table()
_lock = threading.Lock()


def find(price_list: str, model: str, *, now: datetime | None = None) -> Listed | None:
    """Return the price of `model` (an exact id) in `price_list` in effect at `now`, or None.

    The newest row whose effective_from has passed wins; rows still to come are skipped, so None
    (the shipped table then applies) until the first row for the model takes effect.
    """
    moment = now or timezone.now()
    for row in table().rows.get((price_list, model), ()):
        if row.effective_from <= moment:
            return row.listed
    return None


def invalidate() -> None:
    """Re-read the prices on this worker's next lookup (others notice within the cache time)."""
    _table.checked_at = -math.inf


def table() -> Table:
    global _table
    current = _table
    if time.monotonic() - current.checked_at < _cache_seconds():
        return current
    with _lock:
        if _table is not current:  # another green thread refreshed it meanwhile
            return _table
        fingerprint = _fingerprint()
        if fingerprint != current.fingerprint:
            _table = _load(fingerprint)
        else:
            current.checked_at = time.monotonic()
        release_connection()  # a lookup at admission precedes the wait on the provider
        return _table


def _cache_seconds() -> float:
    return settings.TOLLGATE_PRICE_CACHE_SECONDS


def _fingerprint() -> tuple:
    # A delete lowers the count; an add or an edit moves the last change forward.
    prices = ModelPrice.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
    return prices["n"], prices["changed"]


def _load(fingerprint: tuple) -> Table:
    rows: dict[tuple[str, str], list[Row]] = {}
    for price in ModelPrice.objects.order_by("price_list", "model", "-effective_from"):
        listed = Listed(
            price.input_cost_per_token,
            price.output_cost_per_token,
            price.max_output_tokens,
            origin=f"db#{price.pk}",
        )
        rows.setdefault((price.price_list, price.model), []).append(Row(price.effective_from, listed))
    return Table(
        fingerprint=fingerprint,
        checked_at=time.monotonic(),
        rows={name: tuple(found) for name, found in rows.items()},
    )

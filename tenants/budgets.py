"""Budget periods: zero the spend of every key, user, team and membership whose period ended.

A row has a period when `budget_duration` is set; `budget_reset_at` is when the running period
ends (tenants/durations.py: exact UTC boundaries). `reset_due()` is the one domain function the
periodic task calls (billing/tasks.py, every 10 s from Celery beat, after counting pending usage).

Safe to run twice and concurrently: each row is reset by a conditional UPDATE that names the
`budget_reset_at` it read, so of two runs racing on a row only the first matches it; the other
updates nothing and does not count it. No row is read and then written back.

`reserved` is left alone. It is the worst case of requests still in flight (admitted in the old
period); when they settle, their real cost is added to `spend` — the new period's — and their
reservation released. Zeroing `reserved` instead would let settling drive it negative (or
release another request's reservation), and dropping the in-flight cost would let those requests
spend for free. So a request that straddles the boundary is billed to the period it ends in.

With Redis, budget counters are named by the period (`budget_reset_at` as a Unix time), so moving
`budget_reset_at` starts fresh counters by itself; bumping the tenants generation makes every
worker drop its cached key records (which carry the old period and spend) at its next poll.
"""

import logging
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from tenants import durations, generation
from tenants.models import SCOPE_MODELS

log = logging.getLogger(__name__)

MODELS: tuple[Any, ...] = tuple(SCOPE_MODELS.values())


def reset_due(now: datetime | None = None) -> int:
    """Start a new budget period for every row whose period ended at or before `now`.

    Spend goes to 0 and `budget_reset_at` to the end of the period running at `now`. Rows with a
    `budget_duration` but no `budget_reset_at` get one (their spend is kept). Bumps the tenants
    generation once if any row changed. Returns how many rows were reset.
    """
    now = now or timezone.now()
    reset = scheduled = 0
    for model in MODELS:
        has_updated_at = any(f.name == "updated_at" for f in model._meta.fields)
        extra: dict[str, Any] = {"updated_at": timezone.now()} if has_updated_at else {}
        due = (
            model.objects.exclude(budget_duration="")
            .filter(Q(budget_reset_at__lte=now) | Q(budget_reset_at__isnull=True))
            .values_list("pk", "budget_duration", "budget_reset_at")
        )
        for pk, duration, reset_at in due.iterator():
            try:
                next_at = durations.next_reset(duration, now)
            except ValueError:
                log.warning("%s %s has an invalid budget_duration %r; not reset", model.__name__, pk, duration)
                continue
            rows = model.objects.filter(pk=pk, budget_duration=duration)
            if reset_at is None:
                scheduled += rows.filter(budget_reset_at__isnull=True).update(budget_reset_at=next_at, **extra)
            else:
                reset += rows.filter(budget_reset_at=reset_at).update(spend=0, budget_reset_at=next_at, **extra)
    if reset or scheduled:
        generation.bump()
        log.info("budget periods: %d reset, %d scheduled", reset, scheduled)
    return reset

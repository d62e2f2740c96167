"""One counter that every change to keys, users or teams moves; caches compare against it.

With Redis it is one shared key (INCR on change, GET to poll), so every instance sees a change
at its next poll; without Redis it is a database row. A worker polls at most every
TOLLGATE_AUTH_CACHE_SECONDS, so a revoked key is refused everywhere within about that time:
a versioned cache, not a TTL on each entry.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F

from config.database import release_connection
from tenants.models import Generation

log = logging.getLogger(__name__)

REDIS_KEY = "tollgate:tenants:generation"
NAME = "tenants"

_lock = threading.Lock()
_seen: tuple[float, int] = (0.0, -1)  # (checked at, value)


def bump() -> None:
    """Move the counter once the current transaction commits (at once outside one)."""
    transaction.on_commit(_bump_now)


def _bump_now() -> None:
    global _seen
    if settings.REDIS_URL:
        try:
            _redis().incr(REDIS_KEY)
        except Exception as e:  # Redis down: the database counter still moves
            log.warning("could not bump the tenants generation in Redis: %s", type(e).__name__)
    updated = Generation.objects.filter(name=NAME).update(value=F("value") + 1)
    if not updated:
        Generation.objects.get_or_create(name=NAME, defaults={"value": 1})
    _seen = (0.0, -1)  # this process sees its own change at once


def forget() -> None:
    """Poll the counter again at the next call (tests, where it rolls back with each transaction)."""
    global _seen
    _seen = (0.0, -1)


def current() -> int:
    """The counter's value, polled at most every TOLLGATE_AUTH_CACHE_SECONDS."""
    global _seen
    checked_at, value = _seen
    if time.monotonic() - checked_at < settings.TOLLGATE_AUTH_CACHE_SECONDS:
        return value
    with _lock:
        if _seen[0] != checked_at:
            return _seen[1]
        value = _read()
        _seen = (time.monotonic(), value)
        return value


def _read() -> int:
    if settings.REDIS_URL:
        try:
            return int(_redis().get(REDIS_KEY) or 0)
        except Exception as e:
            log.warning("tenants generation unavailable in Redis (%s); using the database", type(e).__name__)
    value = _database_value()
    release_connection()
    return value


def _database_value() -> int:
    return Generation.objects.filter(name=NAME).values_list("value", flat=True).first() or 0


_client = None


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _client

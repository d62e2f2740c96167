"""What the router knows about each deployment right now: cooling down, busy, fast, used.

- Cooldowns: a deployment that fails more than `allowed_fails` times within a minute is left out
  of every pick for `cooldown_time` seconds. With Redis the failures and cooldowns are shared by
  every instance (a failure is rare: one round trip then); each process re-reads the cooldowns at
  most every COOLDOWN_POLL_SECONDS, so another instance's cooldown is seen within that time, and
  its own at once. Without Redis they are per process.
- Requests and tokens per minute of each deployment that sets `rpm`/`tpm`, so a full deployment
  is skipped: in Redis (shared, one round trip per call to such a deployment), else per process.
- Requests in flight and a moving average of latency, for least-busy and latency-based routing:
  per process, as a worker sees them.
"""

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings

log = logging.getLogger(__name__)

COOLDOWN_POLL_SECONDS = 0.5
LATENCY_WEIGHT = 0.3  # of the newest sample in the moving average


@dataclass
class _Local:
    failures: dict[tuple[int, int], int]  # (deployment, minute) → failures
    cooling_until: dict[int, float]  # deployment → Unix time its cooldown ends
    use: dict[tuple[int, int], list[int]]  # (deployment, minute) → [requests, tokens]
    in_flight: dict[int, int]
    latency: dict[int, float]  # seconds, moving average


def _nothing_known() -> _Local:
    return _Local(defaultdict(int), {}, defaultdict(lambda: [0, 0]), defaultdict(int), {})


_local = _nothing_known()
_lock = threading.Lock()
_shared_cooldowns: tuple[float, dict[int, float]] = (0.0, {})  # (read at, deployment → until)


def reset() -> None:
    """Forget everything this process knows (tests; a reloaded deployment table keeps it)."""
    global _local, _shared_cooldowns
    _local = _nothing_known()
    _shared_cooldowns = (0.0, {})


# --- cooldowns -----------------------------------------------------------------------------------


def cooldown_left(pk: int) -> float:
    """Seconds until deployment `pk` may be picked again; 0 when it may now."""
    until = max(_local.cooling_until.get(pk, 0.0), _cooldowns_from_redis().get(pk, 0.0))
    return max(0.0, until - time.time())


def failed(pk: int, *, allowed_fails: int, cooldown_time: float, immediately: bool = False) -> bool:
    """Count one failure of `pk`; start its cooldown past `allowed_fails` this minute. True if it did.

    `immediately` (a provider's 429 with a long Retry-After, or refused credentials): cool down now.
    """
    if cooldown_time <= 0:
        return False
    minute = int(time.time() // 60)
    count = _count_failure(pk, minute)
    if not immediately and count <= allowed_fails:
        return False
    _start_cooldown(pk, cooldown_time)
    log.warning("deployment %s cools down for %.0f s (%d failures this minute)", pk, cooldown_time, count)
    return True


def cool_down(pk: int, seconds: float) -> None:
    """Leave `pk` out for `seconds` now (a failed health check), whatever its failure count."""
    if seconds > 0:
        _start_cooldown(pk, seconds)


def lift_cooldown(pk: int) -> None:
    """Let `pk` be picked again now (a passed health check), here and, with Redis, everywhere."""
    global _shared_cooldowns
    _local.cooling_until.pop(pk, None)
    read_at, known = _shared_cooldowns
    if pk in known:
        _shared_cooldowns = (read_at, {k: v for k, v in known.items() if k != pk})
    client = _redis()
    if client is not None:
        try:
            client.hdel(_cooldowns_key(), str(pk))
        except Exception as e:
            log.warning("Redis unavailable for cooldowns (%s): this process only", type(e).__name__)


def cooling() -> dict[int, float]:
    """Every deployment cooling down now, with the seconds it has left (for /metrics)."""
    now = time.time()
    until = {**_cooldowns_from_redis()}
    for pk, local in _local.cooling_until.items():
        until[pk] = max(until.get(pk, 0.0), local)
    return {pk: end - now for pk, end in until.items() if end > now}


def _count_failure(pk: int, minute: int) -> int:
    client = _redis()
    if client is not None:
        try:
            name = f"tg:fails:{_installation()}:{pk}:{minute}"
            count, _ = client.pipeline().incr(name).expire(name, 120).execute()
            return int(count)
        except Exception as e:
            log.warning("Redis unavailable for deployment failures (%s): counting here", type(e).__name__)
    with _lock:
        _local.failures[(pk, minute)] += 1
        return _local.failures[(pk, minute)]


def _start_cooldown(pk: int, seconds: float) -> None:
    until = time.time() + seconds
    _local.cooling_until[pk] = until
    client = _redis()
    if client is not None:
        try:
            client.hset(_cooldowns_key(), str(pk), repr(until))
        except Exception as e:
            log.warning("Redis unavailable for cooldowns (%s): this process only", type(e).__name__)


def _cooldowns_from_redis() -> dict[int, float]:
    global _shared_cooldowns
    read_at, known = _shared_cooldowns
    if time.monotonic() - read_at < COOLDOWN_POLL_SECONDS:
        return known
    client = _redis()
    if client is None:
        return {}
    fresh: dict[int, float] = {}
    now = time.time()
    try:
        for field, value in client.hgetall(_cooldowns_key()).items():
            until = float(value)
            if until > now:
                fresh[int(field)] = until
            else:
                client.hdel(_cooldowns_key(), field)
    except Exception as e:
        log.warning("Redis unavailable for cooldowns (%s)", type(e).__name__)
    _shared_cooldowns = (time.monotonic(), fresh)
    return fresh


def _cooldowns_key() -> str:
    return f"tg:cooldowns:{_installation()}"


# --- requests and tokens per minute --------------------------------------------------------------


def has_room(pk: int, rpm: int | None, tpm: int | None) -> bool:
    """Whether deployment `pk` can take one more request this minute under its rpm/tpm."""
    if rpm is None and tpm is None:
        return True
    requests, tokens = minute_use(pk)
    return (rpm is None or requests < rpm) and (tpm is None or tokens < tpm)


def minute_use(pk: int) -> tuple[int, int]:
    """Requests and tokens deployment `pk` has taken this minute."""
    minute = int(time.time() // 60)
    client = _redis()
    if client is not None:
        try:
            requests, tokens = client.mget(_use_keys(pk, minute))
            return int(requests or 0), int(tokens or 0)
        except Exception as e:
            log.warning("Redis unavailable for deployment usage (%s): counting here", type(e).__name__)
    requests, tokens = _local.use.get((pk, minute), (0, 0))
    return requests, tokens


def count_use(pk: int, *, requests: int = 0, tokens: int = 0) -> None:
    """Add to deployment `pk`'s use this minute (a request when it is sent, tokens when settled)."""
    minute = int(time.time() // 60)
    client = _redis()
    if client is not None:
        try:
            pipe = client.pipeline()
            for name, amount in zip(_use_keys(pk, minute), (requests, tokens), strict=True):
                if amount:
                    pipe.incrby(name, amount).expire(name, 120)
            pipe.execute()
            return
        except Exception as e:
            log.warning("Redis unavailable for deployment usage (%s): counting here", type(e).__name__)
    with _lock:
        used = _local.use[(pk, minute)]
        used[0] += requests
        used[1] += tokens


def _use_keys(pk: int, minute: int) -> list[str]:
    who = f"{_installation()}:{pk}:{minute}"
    return [f"tg:deprpm:{who}", f"tg:deptpm:{who}"]


# --- in flight and latency (per process) ---------------------------------------------------------


def started(pk: int) -> None:
    _local.in_flight[pk] += 1


def finished(pk: int) -> None:
    _local.in_flight[pk] = max(0, _local.in_flight[pk] - 1)


def observe_latency(pk: int, seconds: float) -> None:
    """A successful attempt's time to its answer (a stream: to its first chunk)."""
    before = _local.latency.get(pk)
    _local.latency[pk] = seconds if before is None else before + LATENCY_WEIGHT * (seconds - before)


def in_flight(pk: int) -> int:
    return _local.in_flight.get(pk, 0)


def latency(pk: int) -> float | None:
    return _local.latency.get(pk)


# --- Redis ---------------------------------------------------------------------------------------


def _redis():
    if not settings.REDIS_URL:
        return None
    from tenants import redis_limits

    return redis_limits.client()


def _installation() -> int:
    from tenants import redis_limits

    return redis_limits.installation()

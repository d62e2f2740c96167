"""Admission and settling in Redis: one Lua script each, atomic, shared by every instance.

Money is counted in integer nano-dollars (1e-9 USD), exact for per-token prices. Keys:
Every name carries the database's installation id (below) after `tg:`.
- `tg:budget:<kind>:<pk>:<period>` hash {spend, reserved}; `spend` starts from the database's
  figure read at that moment (plus usage not yet rolled up) the first time a period is seen, so a
  restarted Redis picks up where the ledger is;
  a new budget period (a new `period`) starts new counters by itself.
- `tg:rpm|tpm:<kind>:<pk>:<minute>`: fixed one-minute windows, expiring after two minutes.
- `tg:par:<kind>:<pk>`: requests in flight.
"""

from decimal import Decimal

from django.conf import settings

from config.database import release_connection

NANO = Decimal("1e9")
# The budget of a scope with only a soft budget: its spend is counted (to warn), never refused.
NO_LIMIT = 2**62

ADMIT = """
local n, cost, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- Whole numbers as digits: digits() would print large doubles in e-notation.
local function digits(x) return string.format('%.0f', x) end
for i = 1, n do
  local a, k = 3 + (i - 1) * 5, (i - 1) * 4
  local budget, rpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 3])
  local tpm, par = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  if budget >= 0 then
    if ARGV[a + 2] == '-1' and redis.call('EXISTS', KEYS[k + 1]) == 0 then return {i, 'unseeded', '0', '0'} end
    redis.call('HSETNX', KEYS[k + 1], 'spend', ARGV[a + 2])
    local spend = tonumber(redis.call('HGET', KEYS[k + 1], 'spend'))
    local reserved = tonumber(redis.call('HGET', KEYS[k + 1], 'reserved') or '0')
    if spend + reserved + cost > budget then return {i, 'budget', digits(spend), digits(reserved)} end
  end
  if rpm >= 0 then
    local used = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
    if used + 1 > rpm then return {i, 'rpm', digits(used), '0'} end
  end
  if tpm >= 0 then
    local used = tonumber(redis.call('GET', KEYS[k + 3]) or '0')
    if used + tokens > tpm then return {i, 'tpm', digits(used), '0'} end
  end
  if par >= 0 then
    local used = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
    if used + 1 > par then return {i, 'parallel', digits(used), '0'} end
  end
end
local left_requests, left_tokens = -1, -1
for i = 1, n do
  local a, k = 3 + (i - 1) * 5, (i - 1) * 4
  local budget, rpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 3])
  local tpm, par = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  if budget >= 0 then redis.call('HINCRBY', KEYS[k + 1], 'reserved', cost) end
  if rpm >= 0 then
    local used = redis.call('INCR', KEYS[k + 2]); redis.call('EXPIRE', KEYS[k + 2], 120)
    if left_requests < 0 or rpm - used < left_requests then left_requests = rpm - used end
  end
  if tpm >= 0 then
    local used = redis.call('INCRBY', KEYS[k + 3], tokens); redis.call('EXPIRE', KEYS[k + 3], 120)
    if left_tokens < 0 or tpm - used < left_tokens then left_tokens = tpm - used end
  end
  if par >= 0 then redis.call('INCR', KEYS[k + 4]); redis.call('EXPIRE', KEYS[k + 4], 3600) end
end
return {0, 'ok', digits(left_requests), digits(left_tokens)}
"""

SETTLE = """
local n, reserved, cost, token_change = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local spends = {}
for i = 1, n do
  local a, k = 4 + (i - 1) * 3, (i - 1) * 4
  spends[i] = '-'
  if ARGV[a + 1] == '1' and redis.call('EXISTS', KEYS[k + 1]) == 1 then
    spends[i] = redis.call('HINCRBY', KEYS[k + 1], 'spend', cost)
    if tonumber(redis.call('HINCRBY', KEYS[k + 1], 'reserved', -reserved)) < 0 then
      redis.call('HSET', KEYS[k + 1], 'reserved', 0)
    end
  end
  if ARGV[a + 2] == '1' and redis.call('EXISTS', KEYS[k + 3]) == 1 then
    if tonumber(redis.call('INCRBY', KEYS[k + 3], token_change)) < 0 then
      redis.call('SET', KEYS[k + 3], 0, 'KEEPTTL')
    end
  end
  if ARGV[a + 3] == '1' and tonumber(redis.call('DECR', KEYS[k + 4])) < 0 then
    redis.call('SET', KEYS[k + 4], 0, 'KEEPTTL')
  end
end
return spends
"""


class Unavailable(Exception):
    """Redis could not be reached; the caller falls back to the database."""


_client = None
_scripts: dict = {}


def _redis():
    global _client
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        _scripts["admit"] = _client.register_script(ADMIT)
        _scripts["settle"] = _client.register_script(SETTLE)
    return _client


def client():
    """The shared Redis client (for other counters kept beside these, e.g. deployment state)."""
    return _redis()


_installation: int | None = None


def installation() -> int:
    """A random id of this database, in every counter's name: a fresh database (tests, a restore)
    never inherits the counters of another one whose rows had the same primary keys."""
    global _installation
    if _installation is None:
        import secrets

        from tenants.models import Generation

        row, _ = Generation.objects.get_or_create(name="installation", defaults={"value": secrets.randbits(62)})
        _installation = row.value
        # Asked on the way to a provider call: many requests of a fresh worker get here at once, and
        # none may then wait on the provider holding one of the pool's few connections.
        release_connection()
    return _installation


def _keys(scope, minute: int) -> list[str]:
    who = f"{installation()}:{scope.kind}:{scope.pk}"
    return [f"tg:budget:{who}:{scope.period}", f"tg:rpm:{who}:{minute}", f"tg:tpm:{who}:{minute}", f"tg:par:{who}"]


def _nano(amount: Decimal) -> int:
    return int((amount * NANO).to_integral_value())


def admit(reservation, seeds: dict[str, Decimal] | None = None) -> None:
    """Reserve in Redis. A budget counter that does not exist yet (a new period, a restarted Redis)
    is never started from the cached key record, which may be old: the script says so, and it is
    started from `seeds` — the spend the database has now plus usage not yet rolled up."""
    from tenants import keys as key_records
    from tenants import limits

    keys: list[str] = []
    args: list = [len(reservation.scopes), _nano(reservation.cost), reservation.tokens]
    for scope in reservation.scopes:
        keys += _keys(scope, reservation.minute)
        member = scope.kind == "member"
        args += [
            _nano(scope.max_budget) if scope.max_budget is not None else (NO_LIMIT if scope.soft_budget else -1),
            _nano(seeds[scope.kind]) if seeds is not None else -1,
            -1 if member or scope.rpm_limit is None else scope.rpm_limit,
            -1 if member or scope.tpm_limit is None else scope.tpm_limit,
            -1 if member or scope.max_parallel_requests is None else scope.max_parallel_requests,
        ]
    try:
        _redis()
        index, outcome, first, second = _scripts["admit"](keys=keys, args=args)
    except Exception as e:  # connection refused, timeout, READONLY…
        raise Unavailable(type(e).__name__) from e
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    if outcome == "unseeded" and seeds is None:
        admit(reservation, seeds=key_records.live_spend(reservation.scopes, reservation.key))
        return
    if int(index) == 0:
        reservation.backend = "redis"
        left_requests, left_tokens = int(first), int(second)
        reservation.remaining_requests = None if left_requests < 0 else left_requests
        reservation.remaining_tokens = None if left_tokens < 0 else left_tokens
        return
    scope = reservation.scopes[int(index) - 1]
    if outcome == "budget":
        spent, held = Decimal(int(first)) / NANO, Decimal(int(second)) / NANO
        raise limits._over_budget(scope, scope.max_budget or Decimal(0), spent, held, reservation.cost)
    what = {"rpm": "requests per minute", "tpm": "tokens per minute", "parallel": "parallel requests"}[outcome]
    limit = {"rpm": scope.rpm_limit, "tpm": scope.tpm_limit, "parallel": scope.max_parallel_requests}[outcome]
    raise limits._rate_limited(
        scope, what, limit or 0, int(first), reservation.minute, reservation.tokens if outcome == "tpm" else 1
    )


def settle(reservation, *, cost: Decimal, tokens: int) -> list[Decimal | None]:
    """Commit the real cost and tokens; return each scope's budget-period spend after it (None: no budget)."""
    keys: list[str] = []
    args: list = [len(reservation.scopes), _nano(reservation.cost), _nano(cost), tokens - reservation.tokens]
    for scope in reservation.scopes:
        keys += _keys(scope, reservation.minute)
        member = scope.kind == "member"
        args += [
            "1" if scope.max_budget is not None or scope.soft_budget is not None else "0",
            "1" if not member and scope.tpm_limit is not None else "0",
            "1" if not member and scope.max_parallel_requests is not None else "0",
        ]
    try:
        _redis()
        spends = _scripts["settle"](keys=keys, args=args)
    except Exception as e:
        raise Unavailable(type(e).__name__) from e
    return [None if spend in (b"-", "-") else Decimal(int(spend)) / NANO for spend in spends]

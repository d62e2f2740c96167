"""Admit a request against every limit that covers its key, or refuse it, before any upstream call.

A key's request is charged against up to four scopes: the key, its user, its team, and the user's
membership in the team (tenants/keys.py builds them). Each may carry a budget (`max_budget` for
the current budget period), `rpm_limit`, `tpm_limit` and `max_parallel_requests`.

Admission reserves the request's worst-case cost and tokens against every scope in one atomic
step, so two concurrent requests can never both pass a check only one of them fits under:
- with Redis: one Lua script (tenants/redis_limits.py) — one round trip, shared by every instance;
- without Redis (or while it is down): one database transaction over the scope rows, taken with
  row locks (SQLite: its IMMEDIATE transaction serialises writers).
Settling commits the real cost and tokens and releases the rest of the reservation. Rate windows
are fixed calendar minutes (UTC).

Rule for unpriced models: a request whose worst-case cost is unknown (no price for its model) is
refused when a budget covers it — a budget that could be overrun is not a budget — and admitted
(reserving nothing) when none does.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from config import database
from tenants import ledger_link
from tenants.auth import Caller
from tenants.exceptions import BudgetExceeded, RateLimited, UnpricedModel
from tenants.keys import KeyRecord, Scope
from tenants.models import SCOPE_MODELS

log = logging.getLogger(__name__)

MODELS: dict[str, Any] = SCOPE_MODELS
LOCK_ORDER = ("key", "user", "team", "member")  # one order everywhere: no deadlocks between admissions


@dataclass
class Reservation:
    """What admission set aside for one request; settle() commits the real use."""

    scopes: tuple[Scope, ...] = ()
    key: KeyRecord | None = None
    cost: Decimal = Decimal(0)
    tokens: int = 0
    minute: int = 0
    backend: str = "none"  # "redis", "database" or "none" (master key, or no limits)
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    settled: bool = field(default=False)
    over_soft_budget: list[str] = field(default_factory=list)  # labels of scopes past their soft budget


def admit(caller: Caller, *, cost: Decimal | None, tokens: int) -> Reservation:
    """Reserve `cost` (USD) and `tokens` against every scope of the caller's key, or refuse.

    Raises BudgetExceeded or RateLimited (429), UnpricedModel (403).
    """
    scopes = caller.key.scopes if caller.key is not None else ()
    if not scopes:
        return Reservation()
    if cost is None:
        budgeted = [s for s in scopes if s.max_budget is not None]
        if budgeted:
            raise UnpricedModel(
                f"This model has no price, and {budgeted[0].label} has a budget that could then be overrun. "
                "Ask an admin to set input_cost_per_token/output_cost_per_token on the model.",
                code="unpriced_model",
            )
        cost = Decimal(0)
    reservation = Reservation(scopes=scopes, key=caller.key, cost=cost, tokens=tokens, minute=int(time.time() // 60))
    if settings.REDIS_URL:
        from tenants import redis_limits

        try:
            redis_limits.admit(reservation)
            _fallback.caught_up = False
            return reservation
        except redis_limits.Unavailable as e:
            log.warning("Redis unavailable for admission (%s): using database counters", e)
            _fallback.catch_up()
    _admit_in_database(reservation)
    return reservation


class _Fallback:
    """When Redis goes away, the database's spend must be complete before it admits anything.

    With Redis, settled spend reaches the scope rows through the rollup (billing/rollup.py), some
    seconds late — and the rollup runs on Celery, whose broker is that Redis. So the first
    admission of this process that falls back counts every pending usage row first; the others
    wait for it. While Redis stays away, settling writes spend directly (`_commit_spend`).
    """

    def __init__(self) -> None:
        self.caught_up = False
        self.lock = threading.Lock()  # gevent's, in a gevent worker

    def catch_up(self) -> None:
        if self.caught_up:
            return
        with self.lock:
            if not self.caught_up:
                ledger_link.count_pending()
                self.caught_up = True


_fallback = _Fallback()


Recorder = Callable[[tuple[str, ...]], None]  # writes the usage row, given the scope kinds charged
Charge = Callable[..., tuple[str, ...]]  # writes spend on scope rows; returns the kinds it wrote


def settle(reservation: Reservation, *, cost: Decimal, tokens: int, record: Recorder) -> None:
    """Commit what the request really cost and used, release the rest, and record it. Runs once.

    `record(charged)` writes the request's usage row (billing/ledger.py) in the same database
    transaction that adds `cost` to the spend of the scope rows named in `charged`, so a row and
    the spend it accounts for commit together or not at all. With Redis, the counters there are
    settled first (outside the transaction: a slow Redis never holds a database connection) and
    no scope row is written: the rollup adds the cost to their spend from the ledger.
    """
    if reservation.settled:
        return
    reservation.settled = True
    charge: Charge | None = None  # master key, or no limit on the key: the rollup counts its spend
    if reservation.backend == "database":
        charge = _settle_in_database
    elif reservation.backend == "redis" and not _settled_in_redis(reservation, cost=cost, tokens=tokens):
        charge = _commit_spend
    with database.write_lock():
        if charge is None:
            record(())  # one INSERT: autocommit is its own transaction
            return
        with transaction.atomic(), connection.cursor() as cursor:
            record(charge(cursor, reservation, cost=cost, tokens=tokens))


def _settled_in_redis(reservation: Reservation, *, cost: Decimal, tokens: int) -> bool:
    from tenants import redis_limits

    try:
        spends = redis_limits.settle(reservation, cost=cost, tokens=tokens)
    except redis_limits.Unavailable as e:
        log.warning("Redis unavailable while settling (%s): spend goes straight to the database", e)
        return False
    for scope, spend in zip(reservation.scopes, spends, strict=True):
        _note_soft_budget(reservation, scope, None if spend is None else (spend,), cost)
    return True


def retry_after(minute: int) -> int:
    """Seconds until the next rate window opens."""
    return max(1, int((minute + 1) * 60 - time.time()) + 1)


# --- the database path -------------------------------------------------------------------------


ADMIT_ATTEMPTS = 3  # a refusal the row no longer explains (another request just released) is tried again


def _admit_in_database(reservation: Reservation) -> None:
    """Charge every scope, or refuse with the limit that refused. A row whose figures changed
    between the refusal and the re-read that explains it (a concurrent request settled and freed
    its reservation) is tried again: the request may fit now."""
    for attempt in range(ADMIT_ATTEMPTS):
        refused = _charge_in_database(reservation)
        if refused is None:
            return
        refusal = _refusal(refused, reservation)
        if refusal is not None:
            raise refusal
        if attempt == ADMIT_ATTEMPTS - 1:  # still racing: the caller tries again shortly
            raise _rate_limited(refused, "parallel requests", refused.max_parallel_requests or 0, 0, reservation.minute)


def _charge_in_database(reservation: Reservation) -> Scope | None:
    """One conditional UPDATE per scope in one transaction: it charges only if every limit holds.

    Returns the scope that refused (nothing charged), or None when all were charged.
    """
    reservation.backend = "database"
    left_requests: list[int] = []
    left_tokens: list[int] = []
    with database.write_lock(), transaction.atomic(), connection.cursor() as cursor:
        for scope in _in_lock_order(reservation.scopes):
            cursor.execute(_ADMIT_SQL[scope.kind], _params(scope, reservation))
            row = cursor.fetchone()
            if row is None:
                transaction.set_rollback(True)
                return scope
            if row[0] is not None:
                left_requests.append(int(row[0]))
            if row[1] is not None:
                left_tokens.append(int(row[1]))
    reservation.remaining_requests = min(left_requests) if left_requests else None
    reservation.remaining_tokens = min(left_tokens) if left_tokens else None
    return None


def _settle_in_database(cursor, reservation: Reservation, *, cost: Decimal, tokens: int) -> tuple[str, ...]:
    params: dict[str, Any] = {
        "cost": cost,
        "held": reservation.cost,
        "m": reservation.minute,
        "dt": tokens - reservation.tokens,
    }
    for scope in _in_lock_order(reservation.scopes):
        cursor.execute(_SETTLE_SQL[scope.kind], {**params, "pk": scope.pk})
        _note_soft_budget(reservation, scope, cursor.fetchone(), cost)
    return tuple(scope.kind for scope in reservation.scopes)


def _commit_spend(cursor, reservation: Reservation, *, cost: Decimal, tokens: int) -> tuple[str, ...]:
    """Redis could not settle: the spend of each scope row is written here instead of by the rollup."""
    for scope in _in_lock_order(reservation.scopes):
        cursor.execute(
            f"UPDATE {_table(scope.kind)} SET spend = spend + %(cost)s WHERE id = %(pk)s RETURNING spend",
            {"cost": cost, "pk": scope.pk},
        )
        _note_soft_budget(reservation, scope, cursor.fetchone(), cost)
    return tuple(scope.kind for scope in reservation.scopes)


def _note_soft_budget(reservation: Reservation, scope: Scope, row: tuple | None, cost: Decimal) -> None:
    """A soft budget only warns: a response header for the caller, a log line when it is crossed."""
    if scope.soft_budget is None or row is None:
        return
    spend = Decimal(str(row[0]))
    if spend < scope.soft_budget:
        return
    reservation.over_soft_budget.append(scope.label)
    if spend - cost < scope.soft_budget:
        log.warning("soft budget reached: %s spent $%s of a soft budget of $%s", scope.label, spend, scope.soft_budget)


def _in_lock_order(scopes: tuple[Scope, ...]) -> list[Scope]:
    return sorted(scopes, key=lambda s: (LOCK_ORDER.index(s.kind), s.pk))


def _params(scope: Scope, reservation: Reservation) -> dict:
    return {"pk": scope.pk, "cost": reservation.cost, "m": reservation.minute, "tok": reservation.tokens}


def _table(kind: str) -> str:
    return MODELS[kind]._meta.db_table


def _limits_sql(table: str) -> str:
    """Charge one request to a key, user or team row, only if every limit of the row still holds.

    In SET, every column reads its value from before the update (SQL semantics, PostgreSQL and
    SQLite alike), so the window columns roll over to the new minute consistently.
    """
    this_minute = "window_minute = %(m)s"
    return f"""
        UPDATE {table} SET
            reserved = reserved + %(cost)s,
            window_requests = CASE WHEN {this_minute} THEN window_requests + 1 ELSE 1 END,
            window_tokens = CASE WHEN {this_minute} THEN window_tokens + %(tok)s ELSE %(tok)s END,
            window_minute = %(m)s,
            in_flight = in_flight + 1
        WHERE id = %(pk)s
          AND (max_budget IS NULL OR spend + reserved + %(cost)s <= max_budget)
          AND (rpm_limit IS NULL OR (CASE WHEN {this_minute} THEN window_requests ELSE 0 END) + 1 <= rpm_limit)
          AND (tpm_limit IS NULL OR (CASE WHEN {this_minute} THEN window_tokens ELSE 0 END) + %(tok)s <= tpm_limit)
          AND (max_parallel_requests IS NULL OR in_flight + 1 <= max_parallel_requests)
        RETURNING rpm_limit - window_requests, tpm_limit - window_tokens"""


def _settle_sql(table: str) -> str:
    return f"""
        UPDATE {table} SET
            spend = spend + %(cost)s,
            reserved = CASE WHEN reserved > %(held)s THEN reserved - %(held)s ELSE 0 END,
            in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END,
            window_tokens = CASE
                WHEN window_minute = %(m)s AND window_tokens + %(dt)s > 0 THEN window_tokens + %(dt)s
                WHEN window_minute = %(m)s THEN 0
                ELSE window_tokens END
        WHERE id = %(pk)s
        RETURNING spend"""


_MEMBER = "tenants_teammembership"
_ADMIT_SQL = {
    **{kind: _limits_sql(MODELS[kind]._meta.db_table) for kind in ("key", "user", "team")},
    "member": f"""
        UPDATE {_MEMBER} SET reserved = reserved + %(cost)s
        WHERE id = %(pk)s AND (max_budget_in_team IS NULL OR spend + reserved + %(cost)s <= max_budget_in_team)
        RETURNING NULL, NULL""",
}
_SETTLE_SQL = {
    **{kind: _settle_sql(MODELS[kind]._meta.db_table) for kind in ("key", "user", "team")},
    "member": f"""
        UPDATE {_MEMBER} SET spend = spend + %(cost)s,
            reserved = CASE WHEN reserved > %(held)s THEN reserved - %(held)s ELSE 0 END
        WHERE id = %(pk)s
        RETURNING NULL""",
}


def _refusal(scope: Scope, reservation: Reservation) -> Exception | None:
    """Read the refusing row again (rare path) to say which limit it was, with figures; None when
    the row, as it is now, would take the request."""
    row = MODELS[scope.kind].objects.filter(pk=scope.pk).first()
    if row is None:  # deleted since the key record was cached
        from tenants.exceptions import AuthenticationFailed

        return AuthenticationFailed(f"{scope.label} no longer exists.")
    try:
        _check(scope, row, reservation)
    except (BudgetExceeded, RateLimited) as refusal:
        return refusal
    return None  # another request released what it held between the refusal and this read


def _window(row, minute: int) -> tuple[int, int]:
    if getattr(row, "window_minute", minute) != minute:
        return 0, 0
    return getattr(row, "window_requests", 0), getattr(row, "window_tokens", 0)


def _check(scope: Scope, row, reservation: Reservation) -> None:
    if scope.max_budget is not None:
        budget = row.max_budget_in_team if scope.kind == "member" else row.max_budget
        if budget is not None and row.spend + row.reserved + reservation.cost > budget:
            raise _over_budget(scope, budget, row.spend, row.reserved, reservation.cost)
    if scope.kind == "member":
        return
    requests, tokens = _window(row, reservation.minute)
    if row.rpm_limit is not None and requests + 1 > row.rpm_limit:
        raise _rate_limited(scope, "requests per minute", row.rpm_limit, requests, reservation.minute)
    if row.tpm_limit is not None and tokens + reservation.tokens > row.tpm_limit:
        raise _rate_limited(scope, "tokens per minute", row.tpm_limit, tokens, reservation.minute, reservation.tokens)
    if row.max_parallel_requests is not None and row.in_flight + 1 > row.max_parallel_requests:
        raise _rate_limited(scope, "parallel requests", row.max_parallel_requests, row.in_flight, reservation.minute)


# --- refusals ----------------------------------------------------------------------------------


def _over_budget(scope: Scope, budget: Decimal, spend: Decimal, reserved: Decimal, cost: Decimal) -> BudgetExceeded:
    return BudgetExceeded(
        f"Budget exceeded for {scope.label}: limit ${budget:.6f}, spent ${spend:.6f}"
        + (f" (+${reserved:.6f} reserved by requests in flight)" if reserved else "")
        + f"; this request could cost up to ${cost:.6f}.",
        code="budget_exceeded",
    )


def _rate_limited(scope: Scope, what: str, limit: int, used: int, minute: int, asking: int = 1) -> RateLimited:
    error = RateLimited(
        f"Rate limit reached for {scope.label}: {limit} {what}; {used} used"
        + (f", this request needs up to {asking}" if asking != 1 else "")
        + ".",
        code="rate_limit_exceeded",
    )
    error.retry_after = retry_after(minute) if what != "parallel requests" else 1
    error.exhausted = {"requests per minute": "requests", "tokens per minute": "tokens"}.get(what, "")
    return error

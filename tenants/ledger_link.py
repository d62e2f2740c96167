"""What tenants needs from the usage ledger, which lives in billing.

Tenants imports neither billing nor proxy (STYLE.md §1), yet two of its jobs need the ledger:
a Redis budget counter starts from spend *plus* usage not yet rolled up into it, and falling back
from Redis to the database first counts that usage into spend. Billing plugs its functions in at
start-up (billing/apps.py); until it does, nothing is pending.
"""

from collections.abc import Callable
from decimal import Decimal


def _nothing_pending(key_id: int, user_id: str | None, team_id: str | None) -> dict[str, Decimal]:
    return {}


def _nothing_to_count() -> object:
    return 0


#: The cost of usage rows not yet in the spend of a key (by pk), its user and team (by public id)
#: and the user's membership in the team, by scope kind ("key", "user", "team", "member").
uncounted_spend: Callable[[int, str | None, str | None], dict[str, Decimal]] = _nothing_pending
#: Count every pending usage row into the spend of the rows it names, now (billing's rollup).
count_pending: Callable[[], object] = _nothing_to_count


def connect(
    *, uncounted: Callable[[int, str | None, str | None], dict[str, Decimal]], count: Callable[[], object]
) -> None:
    global uncounted_spend, count_pending
    uncounted_spend, count_pending = uncounted, count

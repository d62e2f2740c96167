"""Which usage rows a caller may see: one rule for the ledger and the daily table alike.

Both tables name their tenants by public ids (`key_hash`, `team_id`, `user_id`), so one filter
serves both. The rule follows the management API's roles (docs/litellm-management-api.md §3):

- the master key, `proxy_admin` and `proxy_admin_viewer` users: every row;
- anyone else: the rows of their own key and of their user (every key of theirs), plus, for a
  team admin, every row of the teams they administer.

Filters in a request only narrow this set: asking for another tenant's rows answers nothing,
never whether they exist.
"""

from typing import TypeVar

from django.db.models import Model, Q, QuerySet

from tenants import keyaccess, roles
from tenants.auth import Caller

M = TypeVar("M", bound=Model)


def visible(caller: Caller) -> Q | None:
    """The rows the caller may see, as a filter; None when they may see every row."""
    if keyaccess.reads_everything(caller):
        return None
    assert caller.key is not None  # only the master key has no key record, and it reads everything
    mine = Q(key_hash=caller.key.token)
    if caller.key.user_id:
        mine |= Q(user_id=caller.key.user_id)
    administered = list(roles.administered_teams(caller).values_list("team_id", flat=True))
    if administered:
        mine |= Q(team_id__in=administered)
    return mine


def restrict(rows: QuerySet[M], caller: Caller) -> QuerySet[M]:
    """`rows` narrowed to those the caller may see."""
    scope = visible(caller)
    return rows if scope is None else rows.filter(scope)

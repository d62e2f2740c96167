"""Who may see and change which virtual keys, as LiteLLM's /key/* routes decide it.

- A proxy admin (the master key, or a key of a `proxy_admin` user) may do anything.
- A `proxy_admin_viewer` reads every key; viewers change nothing.
- A team admin manages the keys of their teams.
- A team member manages only their own keys, and in a team only what the team's
  `team_member_permissions` grant; they read the keys of their teams.
- A key without a user reads itself and nothing else.

A key the caller may not read answers exactly as a missing one does (NotFound), so nothing about
another team leaks.
"""

from django.db.models import Q, QuerySet

from tenants import keys, roles
from tenants.auth import Caller
from tenants.exceptions import NotFound, NotPermitted
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

READ_ONLY_ROLES = {InternalUser.Role.PROXY_ADMIN_VIEWER, InternalUser.Role.INTERNAL_USER_VIEWER}


def readable(caller: Caller) -> QuerySet[VirtualKey]:
    """The keys /key/info shows the caller: every key (admins, admin viewers); else the caller's
    own key, its user's keys, and the keys of the teams its user belongs to (as LiteLLM does)."""
    if reads_everything(caller):
        return VirtualKey.objects.all()
    assert caller.key is not None
    mine = Q(pk=caller.key.pk)
    if caller.key.user_pk is not None:
        teams = TeamMembership.objects.filter(user_id=caller.key.user_pk).values("team_id")
        mine |= Q(user_id=caller.key.user_pk) | Q(team_id__in=teams)
    return VirtualKey.objects.filter(mine)


def listable(caller: Caller) -> QuerySet[VirtualKey]:
    """The keys /key/list shows: every key (admins, viewers); else the user's keys and, for a
    team admin, every key of their teams. A key without a user has nothing to list."""
    if reads_everything(caller):
        return VirtualKey.objects.all()
    assert caller.key is not None
    if caller.key.user_pk is None:
        raise NotPermitted(
            "This key has no user, so it has no keys to list; use /key/info for the key itself.",
            param="user_id",
            code="key_has_no_user",
        )
    administered = roles.administered_teams(caller).values("pk")
    return VirtualKey.objects.filter(Q(user_id=caller.key.user_pk) | Q(team_id__in=administered))


def find(value: str, *, among: QuerySet[VirtualKey]) -> VirtualKey:
    """The key (raw `sk-...` or its digest) among `among`; NotFound when missing or not there."""
    key = among.select_related("team", "user").filter(token=keys.token_of(value)).first()
    if key is None:
        raise not_found()
    return key


def find_by_alias(alias: str, *, among: QuerySet[VirtualKey]) -> VirtualKey:
    key = among.select_related("team", "user").filter(key_alias=alias).first() if alias else None
    if key is None:
        raise NotFound(f"Key not found. No key with key_alias='{alias}'.", param="key_alias", code="key_not_found")
    return key


def not_found() -> NotFound:
    return NotFound("Key not found.", param="key", code="key_not_found")


def find_to_change(caller: Caller, value: str, *, action: str) -> VirtualKey:
    """The key the caller names, if they may `action` it (block, unblock, delete, regenerate)."""
    require_writer(caller)
    key = find(value, among=readable(caller))
    check_may(caller, key, action=action)
    return key


def check_may(caller: Caller, key: VirtualKey, *, action: str) -> None:
    """Raise NotPermitted unless the caller may `action` this key (which it can already read).

    Admins of the key's team may do anything to it. Its owner may delete and regenerate it (as in
    LiteLLM, in a team too), and update it: in a team when the team grants `/key/update`, else
    when they made it themselves (LiteLLM's rule: a key an admin made for you is the admin's).
    """
    if caller.is_admin or (key.team is not None and roles.is_team_admin(caller, key.team)):
        return
    if action in ("block", "unblock"):
        refusal = "only a proxy admin or an admin of its team may"
    elif not owns(caller, key):
        refusal = "only a proxy admin, an admin of its team or its owner may"
    elif action == "update" and key.team is not None and not granted(caller, key.team, "/key/update"):
        refusal = f"team {key.team.team_id} does not grant its members /key/update (team_member_permissions)"
    elif action == "update" and key.team is None and key.created_by != caller.user_id:
        refusal = "it was made for you by an admin, who alone may change it"
    else:
        return
    raise NotPermitted(f"You may not {action} the key {key.key_name}: {refusal}.", param="key", code="not_key_admin")


def require_writer(caller: Caller) -> None:
    """Refuse callers that may change no key at all: viewers, and keys without a user."""
    if caller.is_admin:
        return
    assert caller.key is not None
    if caller.key.user_pk is None:
        raise NotPermitted(
            "A key without a user may only read itself (/key/info); key management needs a user's key.",
            code="key_has_no_user",
        )
    if caller.key.user_role in READ_ONLY_ROLES:
        raise NotPermitted(f"The role {caller.key.user_role} may only read keys.", code="read_only_role")


def reads_everything(caller: Caller) -> bool:
    return caller.is_admin or (caller.key is not None and caller.key.user_role == InternalUser.Role.PROXY_ADMIN_VIEWER)


def owns(caller: Caller, key: VirtualKey) -> bool:
    return caller.key is not None and caller.key.user_pk is not None and key.user_id == caller.key.user_pk


def granted(caller: Caller, team: Team, route: str) -> bool:
    """A team admin may; a member only what the team's `team_member_permissions` grant."""
    if roles.is_team_admin(caller, team):
        return True
    if caller.key is None or caller.key.user_pk is None or route not in (team.team_member_permissions or []):
        return False
    return TeamMembership.objects.filter(team=team, user_id=caller.key.user_pk).exists()

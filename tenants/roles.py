"""Who may manage what: proxy admins everything, team admins their own team, members themselves.

A team admin is a user with role `admin` in the team's memberships; a key acts with its user's
rights (LiteLLM's rule: team admin is never a property of a key alone). The master key acts as
the proxy admin `default_user_id`.
"""

from django.db.models import QuerySet

from tenants.auth import Caller
from tenants.models import Team, TeamMembership, VirtualKey


def is_team_admin(caller: Caller, team: Team) -> bool:
    if caller.is_admin:
        return True
    if caller.key is None or caller.key.user_pk is None:
        return False
    return TeamMembership.objects.filter(team=team, user_id=caller.key.user_pk, role=TeamMembership.Role.ADMIN).exists()


def is_member(caller: Caller, team: Team) -> bool:
    if caller.is_admin:
        return True
    if caller.key is None:
        return False
    if caller.key.team_pk == team.pk:
        return True
    return (
        caller.key.user_pk is not None and TeamMembership.objects.filter(team=team, user_id=caller.key.user_pk).exists()
    )


def administered_teams(caller: Caller) -> QuerySet[Team]:
    """The teams the caller may manage (every team for a proxy admin)."""
    if caller.is_admin:
        return Team.objects.all()
    if caller.key is None or caller.key.user_pk is None:
        return Team.objects.none()
    return Team.objects.filter(memberships__user_id=caller.key.user_pk, memberships__role=TeamMembership.Role.ADMIN)


def visible_keys(caller: Caller) -> QuerySet[VirtualKey]:
    """The keys the caller may see: all (admin); their team's (team admin); their own (anyone)."""
    if caller.is_admin:
        return VirtualKey.objects.all()
    assert caller.key is not None
    own = VirtualKey.objects.filter(pk=caller.key.pk)
    if caller.key.user_pk is not None:
        own = VirtualKey.objects.filter(user_id=caller.key.user_pk) | own
    return (own | VirtualKey.objects.filter(team__in=administered_teams(caller))).distinct()


def may_manage_key(caller: Caller, key: VirtualKey) -> bool:
    """Change, block, delete or regenerate: admin, the key's team admin, or the key's own user."""
    if caller.is_admin:
        return True
    assert caller.key is not None
    if key.team_id is not None and is_team_admin(caller, key.team):
        return True
    return caller.key.user_pk is not None and key.user_id == caller.key.user_pk

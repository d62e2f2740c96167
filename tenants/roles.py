"""Who may manage what: proxy admins everything, team admins their own team, members themselves.

A team admin is a user with role `admin` in the team's memberships; a key acts with its user's
rights (LiteLLM's rule: team admin is never a property of a key alone). The master key acts as
the proxy admin `default_user_id`.
"""

from django.db.models import Q, QuerySet

from tenants.auth import Caller
from tenants.models import InternalUser, Team, TeamMembership


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


def member_teams(caller: Caller) -> QuerySet[Team]:
    """The teams the caller belongs to, as a member or as one of its keys (every team for an admin)."""
    if caller.is_admin:
        return Team.objects.all()
    assert caller.key is not None
    belongs = Q(pk=caller.key.team_pk) if caller.key.team_pk is not None else Q(pk__in=[])
    if caller.key.user_pk is not None:
        belongs |= Q(pk__in=TeamMembership.objects.filter(user_id=caller.key.user_pk).values("team_id"))
    return Team.objects.filter(belongs)


def may_read_user(caller: Caller, user: InternalUser) -> bool:
    """Admin, the user themself, or an admin of a team the user is in."""
    if caller.is_admin:
        return True
    assert caller.key is not None
    if caller.key.user_pk == user.pk:
        return True
    return administered_teams(caller).filter(memberships__user=user).exists()

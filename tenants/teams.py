"""Teams: make them, change them, add and remove members, delete them with their keys.

Every change bumps the tenants generation, so a blocked or deleted team's keys are refused
everywhere within TOLLGATE_AUTH_CACHE_SECONDS. Members named only by email, or by a user id
not seen before, become internal users, as LiteLLM's /team/new and /team/member_add do.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants import audit, durations, generation, roles
from tenants.auth import Caller
from tenants.exceptions import InvalidInput, NotFound
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey, new_id


@dataclass(frozen=True)
class Member:
    """A member as the API names one: a role and a user id, an email, or both."""

    role: str
    user_id: str | None = None
    user_email: str | None = None


def find(team_id: str, *, visible_to: Caller) -> Team:
    """The team with this id if the caller belongs to it; NotFound alike for missing and hidden."""
    team = roles.member_teams(visible_to).filter(team_id=team_id).first()
    if team is None:
        raise not_found(team_id)
    return team


def find_all(team_ids: list[str]) -> list[Team]:
    """Every team named, in the order named; NotFound naming the first unknown id."""
    found = {t.team_id: t for t in Team.objects.filter(team_id__in=team_ids)}
    for team_id in team_ids:
        if team_id not in found:
            raise not_found(team_id)
    return [found[team_id] for team_id in dict.fromkeys(team_ids)]


def not_found(team_id: str) -> NotFound:
    return NotFound(f"Team not found, passed team_id={team_id}", param="team_id", code="team_not_found")


@transaction.atomic
def create(*, by: Caller, team_id: str | None = None, members: Sequence[Member] = (), **fields: Any) -> Team:
    """Store a new team and its members; the caller's user joins as admin, as in LiteLLM.

    The master key has no user row (`default_user_id`), so it does not join.
    """
    set_budget_reset(fields)
    try:
        with transaction.atomic():
            team = Team.objects.create(team_id=team_id or new_id(), **fields)
    except IntegrityError:
        raise InvalidInput(
            f"Team id = {team_id} already exists. Please use a different team id.",
            param="team_id",
            code="team_id_taken",
        ) from None
    members = list(members)
    creator = by.key.user_id if by.key is not None else None
    if creator and not any(m.user_id == creator for m in members):
        members.append(Member(role=TeamMembership.Role.ADMIN, user_id=creator))
    joined = []
    for member in members:
        membership, _ = TeamMembership.objects.get_or_create(
            team=team, user=_user_for(member), defaults={"role": member.role}
        )
        joined.append(f"{membership.user.user_id} ({membership.role})")
    generation.bump()
    audit.record("create", team, after={**audit.snapshot(team), "members": joined}, caller=by)
    return team


@transaction.atomic
def update(team: Team, **fields: Any) -> Team:
    """Change the fields given (and only those); a new budget_duration restarts the budget period."""
    before = audit.snapshot(team)
    set_budget_reset(fields)
    for name, value in fields.items():
        setattr(team, name, value)
    team.save()
    generation.bump()
    audit.record("update", team, before=before, after=audit.snapshot(team))
    return team


@transaction.atomic
def delete(teams: list[Team]) -> None:
    """Delete the teams and every key of theirs; their members stay, outside the team."""
    for team in teams:
        audit.record("delete", team, before={**audit.snapshot(team), "keys": team.keys.count()})
    VirtualKey.objects.filter(team__in=teams).delete()
    Team.objects.filter(pk__in=[t.pk for t in teams]).delete()
    generation.bump()


@transaction.atomic
def add_members(
    team: Team, members: Sequence[Member], *, max_budget_in_team: Decimal | None = None
) -> list[TeamMembership]:
    """Add the members not in the team yet; InvalidInput when every one of them already is."""
    added = []
    for member in members:
        user = _user_for(member)
        membership, created = TeamMembership.objects.get_or_create(
            team=team, user=user, defaults={"role": member.role, "max_budget_in_team": max_budget_in_team}
        )
        if created:
            added.append(membership)
            audit.record("member_add", membership, after=audit.snapshot(membership))
    if not added:
        raise InvalidInput(
            f"The member(s) are already in team {team.team_id}.",
            param="member",
            code="team_member_already_in_team",
        )
    generation.bump()
    return added


def membership_of(team: Team, *, user_id: str | None, user_email: str | None) -> TeamMembership:
    """The membership of the user named by id (else by email) in `team`; InvalidInput if none."""
    memberships = TeamMembership.objects.filter(team=team).select_related("user")
    found = (
        memberships.filter(user__user_id=user_id).first()
        if user_id
        else memberships.filter(user__user_email__iexact=user_email).first()
    )
    if found is None:
        raise InvalidInput(
            f"User not found in team {team.team_id}.",
            param="user_id" if user_id else "user_email",
            code="user_not_in_team",
        )
    return found


@transaction.atomic
def remove_member(membership: TeamMembership) -> None:
    """Take the user out of the team; their keys are kept, as LiteLLM does."""
    audit.record("member_remove", membership, before=audit.snapshot(membership))
    membership.delete()
    generation.bump()


def set_budget_reset(fields: dict[str, Any]) -> None:
    """When `budget_duration` is being set, start its period now (none when it is cleared)."""
    if "budget_duration" in fields:
        duration = fields["budget_duration"]
        fields["budget_reset_at"] = durations.next_reset(duration, timezone.now()) if duration else None


def _user_for(member: Member) -> InternalUser:
    """The user a member names: by id (created if new), else by email (created if none has it)."""
    if member.user_id:
        user, _ = InternalUser.objects.get_or_create(
            user_id=member.user_id, defaults={"user_email": member.user_email or ""}
        )
        return user
    assert member.user_email
    found = InternalUser.objects.filter(user_email__iexact=member.user_email).order_by("pk").first()
    return found or InternalUser.objects.create(user_email=member.user_email)

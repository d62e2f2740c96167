"""Internal users: make them (with a first key, as LiteLLM's /user/new does), change, delete them.

Every change bumps the tenants generation: a blocked or deleted user's keys are refused
everywhere within TOLLGATE_AUTH_CACHE_SECONDS, and a changed role or model list is seen as fast.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants import audit, durations, generation, keys, teams
from tenants.exceptions import Conflict, InvalidInput, NotFound
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey, new_id


@dataclass(frozen=True)
class Seat:
    """A team a new user joins, with their role and budget in it."""

    team_id: str
    role: str = TeamMembership.Role.USER
    max_budget_in_team: Decimal | None = None


def find(user_id: str) -> InternalUser:
    user = InternalUser.objects.filter(user_id=user_id).first()
    if user is None:
        raise not_found(user_id)
    return user


def find_by_email(user_email: str) -> InternalUser:
    user = InternalUser.objects.filter(user_email__iexact=user_email).order_by("pk").first()
    if user is None:
        raise NotFound(f"User not found, passed user_email={user_email}", param="user_email", code="user_not_found")
    return user


def find_all(user_ids: list[str]) -> list[InternalUser]:
    """Every user named; NotFound naming the first unknown id."""
    found = {u.user_id: u for u in InternalUser.objects.filter(user_id__in=user_ids)}
    for user_id in user_ids:
        if user_id not in found:
            raise not_found(user_id)
    return [found[user_id] for user_id in dict.fromkeys(user_ids)]


def not_found(user_id: str) -> NotFound:
    return NotFound(f"User not found, passed user_id={user_id}", param="user_id", code="user_not_found")


@transaction.atomic
def create(
    *,
    by: str,
    user_id: str | None = None,
    seats: Sequence[Seat] = (),
    auto_create_key: bool = True,
    key_alias: str = "",
    duration: str | None = None,
    **fields: Any,
) -> tuple[InternalUser, VirtualKey | None, str]:
    """Store a new user, seat them in their teams, and make their first key unless told not to.

    Return (user, key, secret): the secret is shown once; without a key, (user, None, "").
    """
    _check_email_free(fields.get("user_email", ""), user_id=None)
    team_of = {t.team_id: t for t in Team.objects.filter(team_id__in=[s.team_id for s in seats])}
    for seat in seats:
        if seat.team_id not in team_of:
            raise InvalidInput(f"teams: no team with team_id={seat.team_id}", param="teams", code="team_not_found")
    if key_alias and VirtualKey.objects.filter(key_alias=key_alias).exists():
        raise InvalidInput(f"Key alias '{key_alias}' is already taken.", param="key_alias", code="key_alias_taken")
    teams.set_budget_reset(fields)
    try:
        with transaction.atomic():
            user = InternalUser.objects.create(user_id=user_id or new_id(), **fields)
    except IntegrityError:
        raise Conflict(f"User with id={user_id} already exists.", param="user_id", code="user_id_taken") from None
    for seat in seats:
        TeamMembership.objects.get_or_create(
            team=team_of[seat.team_id],
            user=user,
            defaults={"role": seat.role, "max_budget_in_team": seat.max_budget_in_team},
        )
    key, secret = None, ""
    if auto_create_key:
        key, secret = keys.create(
            user=user,
            key_alias=key_alias,
            expires=durations.expiry(duration, timezone.now()),
            created_by=by,
            updated_by=by,
        )
    generation.bump()
    audit.record("create", user, after=audit.snapshot(user))
    if key is not None:
        audit.record("create", key, after=audit.snapshot(key))
    return user, key, secret


@transaction.atomic
def update(user: InternalUser, **fields: Any) -> InternalUser:
    """Change the fields given (and only those); a new budget_duration restarts the budget period."""
    if fields.get("user_email"):
        _check_email_free(fields["user_email"], user_id=user.user_id)
    before = audit.snapshot(user)
    teams.set_budget_reset(fields)
    for name, value in fields.items():
        setattr(user, name, value)
    user.save()
    generation.bump()
    audit.record("update", user, before=before, after=audit.snapshot(user))
    return user


@transaction.atomic
def delete(users: list[InternalUser]) -> int:
    """Delete the users, their keys and memberships; return how many users went."""
    for user in users:
        audit.record("delete", user, before={**audit.snapshot(user), "keys": user.keys.count()})
    VirtualKey.objects.filter(user__in=users).delete()
    deleted = InternalUser.objects.filter(pk__in=[u.pk for u in users]).delete()[1].get(InternalUser._meta.label, 0)
    generation.bump()
    return deleted


def _check_email_free(user_email: str, *, user_id: str | None) -> None:
    if not user_email:
        return
    taken = InternalUser.objects.filter(user_email__iexact=user_email)
    if user_id is not None:
        taken = taken.exclude(user_id=user_id)
    if taken.exists():
        raise Conflict(f"User with email={user_email} already exists.", param="user_email", code="user_email_taken")

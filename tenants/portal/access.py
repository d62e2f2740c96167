"""Who is using the portal, and which team pages they may open.

A portal login is a Django auth user linked to an internal user by `InternalUser.account` (set in
the admin, or made by the password-reset form the first time a member sets a password:
tenants/portal/forms.py). The portal acts with that internal user's rights, exactly as a key of
theirs without a team would, so key changes go through the same rules as the management API
(tenants/keymanagement.py, tenants/keyaccess.py).

Every team page starts from `membership()`: a team the user is not a member of answers 404,
the same as a team that does not exist, so nothing about other teams leaks.
"""

import functools
from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.auth import Caller
from tenants.keys import KeyRecord
from tenants.models import InternalUser, TeamMembership


def internal_user(request: HttpRequest) -> InternalUser | None:
    """The internal user behind the logged-in account; None when unlinked or blocked."""
    if not request.user.is_authenticated:
        return None
    return InternalUser.objects.filter(account_id=request.user.pk, blocked=False).first()


def membership(user: InternalUser, team_id: str) -> TeamMembership | None:
    return TeamMembership.objects.select_related("team", "user").filter(team__team_id=team_id, user=user).first()


def caller_for(user: InternalUser) -> Caller:
    """A Caller with the user's own rights: no key of its own, no team of its own."""
    record = KeyRecord(
        pk=0,  # matches no key row: the portal reaches keys through the user and their teams only
        token="",
        key_name="",
        key_alias="",
        blocked=False,
        expires=None,
        models=(),
        aliases={},
        max_budget=None,
        team_pk=None,
        team_id=None,
        team_blocked=False,
        team_models=(),
        team_aliases={},
        user_pk=user.pk,
        user_id=user.user_id,
        user_role=user.user_role,
        user_blocked=user.blocked,
        user_models=tuple(user.allowed_models or ()),
    )
    return Caller(kind="portal", hint=f"portal user {user.user_id}", key=record)


def team_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Log in, resolve the user's membership of `team_id`, or answer 404; pass the membership on."""

    @login_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, team_id: str, *args, **kwargs) -> HttpResponse:
        user = internal_user(request)
        if user is None:
            return unlinked(request)
        found = membership(user, team_id)
        if found is None:
            return not_found(request)
        return view(request, found, *args, **kwargs)

    return wrapped


def is_admin(member: TeamMembership) -> bool:
    return member.role == TeamMembership.Role.ADMIN


def not_found(request: HttpRequest) -> HttpResponse:
    """The portal's 404: the same page for a missing team and for someone else's."""
    return render(request, "portal/not_found.html", status=404)


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "portal/forbidden.html", {"message": message}, status=403)


def unlinked(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/unlinked.html", status=403)

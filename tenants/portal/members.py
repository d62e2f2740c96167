"""The portal's members page: a team admin adds existing users, changes roles, removes members.

Plain members get 403 here (they see their team, not its roster). A team always keeps at least
one admin, so nobody can lock a team out of its own portal by mistake.
"""

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tenants import generation, teams, users
from tenants.exceptions import TenantError
from tenants.models import TeamMembership
from tenants.portal import access
from tenants.portal.forms import MemberAddForm, RoleForm

ADMIN_ONLY = "Only an admin of this team may manage its members."


@access.team_page
def members(request: HttpRequest, member: TeamMembership) -> HttpResponse:
    if not access.is_admin(member):
        return access.forbidden(request, ADMIN_ONLY)
    return _page(request, member, MemberAddForm())


@require_POST
@access.team_page
def member_add(request: HttpRequest, member: TeamMembership) -> HttpResponse:
    if not access.is_admin(member):
        return access.forbidden(request, ADMIN_ONLY)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            person = users.find_by_email(form.cleaned_data["user_email"])
            teams.add_members(member.team, [teams.Member(role=form.cleaned_data["role"], user_id=person.user_id)])
        except TenantError as refused:
            form.add_error("user_email", _explain(refused))
        else:
            return redirect("portal:members", team_id=member.team.team_id)
    return _page(request, member, form, status=400)


@require_POST
@access.team_page
def member_role(request: HttpRequest, member: TeamMembership, pk: int) -> HttpResponse:
    if not access.is_admin(member):
        return access.forbidden(request, ADMIN_ONLY)
    other = member.team.memberships.filter(pk=pk).first()
    form = RoleForm(request.POST)
    if other is None or not form.is_valid():
        return access.not_found(request)
    if form.cleaned_data["role"] != TeamMembership.Role.ADMIN and _last_admin(other):
        return access.forbidden(request, "The team needs at least one admin: make someone else admin first.")
    change_role(other, form.cleaned_data["role"])
    if other.pk == member.pk and other.role != TeamMembership.Role.ADMIN:
        return redirect("portal:team", team_id=member.team.team_id)  # no longer allowed on this page
    return redirect("portal:members", team_id=member.team.team_id)


@require_POST
@access.team_page
def member_remove(request: HttpRequest, member: TeamMembership, pk: int) -> HttpResponse:
    if not access.is_admin(member):
        return access.forbidden(request, ADMIN_ONLY)
    other = member.team.memberships.filter(pk=pk).first()
    if other is None:
        return access.not_found(request)
    if _last_admin(other):
        return access.forbidden(request, "The team needs at least one admin: make someone else admin first.")
    teams.remove_member(other)
    if other.pk == member.pk:
        return redirect("portal:home")
    return redirect("portal:members", team_id=member.team.team_id)


@transaction.atomic
def change_role(membership: TeamMembership, role: str) -> None:
    """Set a member's role; the generation moves so that cached views of the team are redrawn."""
    membership.role = role
    membership.save(update_fields=["role"])
    generation.bump()


def _last_admin(membership: TeamMembership) -> bool:
    if membership.role != TeamMembership.Role.ADMIN:
        return False
    return not membership.team.memberships.filter(role=TeamMembership.Role.ADMIN).exclude(pk=membership.pk).exists()


def _explain(refused: TenantError) -> str:
    if refused.code == "user_not_found":
        return "No Tollgate user has this email; a proxy admin creates users."
    if refused.code == "team_member_already_in_team":
        return "This user is already a member of the team."
    return refused.message


def _page(request: HttpRequest, member: TeamMembership, form: MemberAddForm, *, status: int = 200) -> HttpResponse:
    roster = member.team.memberships.select_related("user").order_by("user__user_email", "user__user_id")
    return render(
        request,
        "portal/members.html",
        {"member": member, "team": member.team, "roster": roster, "form": form, "roles": TeamMembership.Role.choices},
        status=status,
    )

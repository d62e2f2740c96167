"""The team portal's pages: password reset, a member's teams, a team's budget and keys, making and revoking keys.

Key changes go through tenants/keymanagement.py with the member's own rights (access.caller_for),
so the portal allows exactly what the management API allows that user: team admins manage every
key of the team; members create keys when the team lets them and delete their own.
A new key is shown once, in the answer to the POST that made it, and never stored.
"""

from django.conf import settings
from django.contrib.auth import views as auth
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from tenants import keyaccess, keymanagement
from tenants.exceptions import TenantError
from tenants.models import TeamMembership, VirtualKey
from tenants.portal import access
from tenants.portal.forms import KeyForm, PortalPasswordResetForm


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = access.internal_user(request)
    if user is None:
        return access.unlinked(request)
    memberships = user.memberships.select_related("team").order_by("team__team_alias", "team__team_id")
    return render(request, "portal/home.html", {"person": user, "memberships": memberships})


class PasswordResetView(auth.PasswordResetView):
    """Django's reset view with the portal's form (first passwords too) and the public host in links."""

    form_class = PortalPasswordResetForm
    email_template_name = "registration/portal_password_reset_email.txt"
    subject_template_name = "registration/portal_password_reset_subject.txt"
    success_url = reverse_lazy("portal:password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        # Django's view always names the request's host; name the public one when it is set.
        form.save(
            domain_override=settings.TOLLGATE_PUBLIC_HOST or None,
            use_https=self.request.is_secure(),
            token_generator=self.token_generator,
            from_email=self.from_email,
            email_template_name=self.email_template_name,
            subject_template_name=self.subject_template_name,
            request=self.request,
        )
        return redirect(self.success_url)


@access.team_page
def team(request: HttpRequest, member: TeamMembership) -> HttpResponse:
    return _team_page(request, member, KeyForm(team=member.team))


@never_cache  # the answer carries the new key: no cache may keep it
@require_POST
@access.team_page
def key_create(request: HttpRequest, member: TeamMembership) -> HttpResponse:
    form = KeyForm(request.POST, team=member.team)
    if not form.is_valid():
        return _team_page(request, member, form, status=400)
    caller = access.caller_for(member.user)
    try:
        key, secret = keymanagement.generate(
            caller, team_id=member.team.team_id, user_id=member.user.user_id, **form.key_fields()
        )
    except TenantError as refused:
        form.add_error(None, refused.message)
        return _team_page(request, member, form, status=400)
    return _team_page(request, member, KeyForm(team=member.team), created=key, secret=secret)


@require_POST
@access.team_page
def key_block(request: HttpRequest, member: TeamMembership, pk: int) -> HttpResponse:
    key = _team_key(member, pk)
    if key is None:
        return access.not_found(request)
    blocked = request.POST.get("blocked") == "1"
    caller = access.caller_for(member.user)
    try:
        keyaccess.require_writer(caller)
        keyaccess.check_may(caller, key, action="block" if blocked else "unblock")
    except TenantError as refused:
        return access.forbidden(request, refused.message)
    keymanagement.set_blocked(caller, key, blocked)
    return redirect("portal:team", team_id=member.team.team_id)


@require_POST
@access.team_page
def key_delete(request: HttpRequest, member: TeamMembership, pk: int) -> HttpResponse:
    key = _team_key(member, pk)
    if key is None:
        return access.not_found(request)
    try:
        keymanagement.delete(access.caller_for(member.user), [key.token])
    except TenantError as refused:
        return access.forbidden(request, refused.message)
    return redirect("portal:team", team_id=member.team.team_id)


def _team_key(member: TeamMembership, pk: int) -> VirtualKey | None:
    """A key of this team (another team's key reads as missing)."""
    return VirtualKey.objects.select_related("team", "user").filter(pk=pk, team=member.team).first()


def _team_page(
    request: HttpRequest,
    member: TeamMembership,
    form: KeyForm,
    *,
    status: int = 200,
    created: VirtualKey | None = None,
    secret: str | None = None,
) -> HttpResponse:
    team = member.team
    caller = access.caller_for(member.user)
    keys = [
        {"key": key, "may_block": _may(caller, key, "block"), "may_delete": _may(caller, key, "delete")}
        for key in VirtualKey.objects.filter(team=team).select_related("user", "team").order_by("-created_at")
    ]
    left = max(team.max_budget - team.spend, 0) if team.max_budget is not None else None
    context = {
        "member": member,
        "team": team,
        "keys": keys,
        "form": form,
        "may_create": keyaccess.granted(caller, team, "/key/generate"),
        "left": left,
        "used_percent": min(100, round(100 * team.spend / team.max_budget)) if team.max_budget else None,
        "created": created,
        "secret": secret,
    }
    return render(request, "portal/team.html", context, status=status)


def _may(caller, key: VirtualKey, action: str) -> bool:
    try:
        keyaccess.check_may(caller, key, action=action)
    except TenantError:
        return False
    return True

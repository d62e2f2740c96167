"""The portal's usage tab: a team's charts and requests, for the members of that team only.

It lives in billing because it reads the ledger (tenants never imports billing); who may see
the page is the portal's rule (tenants/portal/access.py): members of the team, 404 for others.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.dashboard import stats, usage
from tenants.models import TeamMembership
from tenants.portal import access


@access.team_page
def team_usage(request: HttpRequest, member: TeamMembership) -> HttpResponse:
    scope = stats.Scope(team_id=member.team.team_id)
    section = usage.context(request, scope, breakdowns=("model", "key_hash", "user_id"))
    return render(request, "portal/usage.html", {**section, "member": member, "team": member.team})

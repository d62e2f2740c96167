"""The staff dashboard: every team's and key's usage, for Django staff users (the admin login).

Anyone else is sent to the admin login page, as the admin itself does; a team or key that does
not exist is a 404. Pages only read.
"""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.dashboard import budgets, stats, usage
from tenants.models import Team, VirtualKey


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    section = usage.context(request, stats.Scope(), breakdowns=("team_id", "model", "key_hash", "user_id"))
    return render(
        request,
        "dashboard/overview.html",
        {**section, "budgets": budgets.near_limit(), "team_count": Team.objects.count()},
    )


@staff_member_required
def team(request: HttpRequest, team_id: str) -> HttpResponse:
    found = Team.objects.filter(team_id=team_id).first()
    if found is None:
        return not_found(request, "No such team.")
    section = usage.context(request, stats.Scope(team_id=found.team_id), breakdowns=("model", "key_hash", "user_id"))
    keys = found.keys.select_related("user").order_by("-created_at")[:100]
    return render(request, "dashboard/team.html", {**section, "team": found, "keys": keys})


@staff_member_required
def key(request: HttpRequest, pk: int) -> HttpResponse:
    found = VirtualKey.objects.select_related("team", "user").filter(pk=pk).first()
    if found is None:
        return not_found(request, "No such key.")
    section = usage.context(request, stats.Scope(key_hash=found.token), breakdowns=("model",))
    return render(request, "dashboard/key.html", {**section, "key": found})


def not_found(request: HttpRequest, message: str) -> HttpResponse:
    """A 404 page in the dashboard's look (the project's handler404 answers API callers in JSON)."""
    return render(request, "dashboard/not_found.html", {"message": message}, status=404)

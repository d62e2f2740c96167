"""Teams, members and users in the admin: pages render, changes are audited, and only staff get in."""

import pytest

from tenants.models import AuditEntry, InternalUser, Team, TeamMembership, VirtualKey

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/",
    "/admin/tenants/team/",
    "/admin/tenants/team/add/",
    "/admin/tenants/internaluser/",
    "/admin/tenants/internaluser/add/",
    "/admin/tenants/virtualkey/",
    "/admin/tenants/virtualkey/generate/",
    "/admin/tenants/auditentry/",
    "/admin/proxy/deployment/",
    "/admin/proxy/deployment/add/",
    "/admin/billing/usagerecord/",
    "/admin/billing/usagerecord/export.csv",
    "/admin/billing/dailyusage/",
    "/admin/billing/dailyusage/export.csv",
    "/admin/billing/modelprice/",
]


def team_form(**fields) -> dict:
    data = {
        "team_id": "t-admin",
        "team_alias": "Admin made",
        "max_budget": "",
        "soft_budget": "",
        "budget_duration": "",
        "rpm_limit": "",
        "tpm_limit": "",
        "max_parallel_requests": "",
        "metadata": "{}",
        "allowed_models": "[]",
        "model_aliases": "{}",
        "team_member_permissions": "[]",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return data


@pytest.mark.parametrize("page", PAGES)
def test_admin_pages_render_for_a_superuser(admin_client, page):
    assert admin_client.get(page).status_code == 200


@pytest.mark.parametrize("page", [*PAGES, "/admin/proxy/deployment/1/test-connection/"])
def test_a_non_staff_user_reaches_none_of_it(client, django_user_model, page):
    user = django_user_model.objects.create_user("member", password="pw")
    client.force_login(user)

    r = client.get(page)

    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_anonymous_posts_change_nothing(client, make_key):
    key, _ = make_key()

    r = client.post("/admin/tenants/virtualkey/", {"action": "block", "_selected_action": [key.pk]})

    assert r.status_code == 302
    key.refresh_from_db()
    assert not key.blocked


def test_team_with_a_member_is_created_and_audited(admin_client, make_user):
    user = make_user("dee")

    r = admin_client.post(
        "/admin/tenants/team/add/",
        team_form(
            budget_duration="30d",
            **{
                "memberships-TOTAL_FORMS": "1",
                "memberships-0-user": str(user.pk),
                "memberships-0-role": "admin",
                "memberships-0-max_budget_in_team": "2",
                "memberships-0-budget_duration": "",
            },
        ),
    )

    assert r.status_code == 302, r.content.decode()
    team = Team.objects.get(team_id="t-admin")
    assert team.budget_reset_at is not None
    membership = TeamMembership.objects.get()
    assert (membership.role, str(membership.max_budget_in_team)) == ("admin", "2.0000000000")
    found = [(e.action, e.object_type, e.object_id, e.via, e.actor) for e in AuditEntry.objects.order_by("id")]
    assert found == [
        ("create", "team", "t-admin", "admin", "admin"),
        ("create", "membership", "t-admin/dee", "admin", "admin"),
    ]


def test_team_change_records_before_and_after(admin_client, team):
    r = admin_client.post(f"/admin/tenants/team/{team.pk}/change/", team_form(team_id="team-a", max_budget="12"))

    assert r.status_code == 302, r.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.before, entry.after) == (
        "update",
        {"max_budget": None, "team_alias": "Team A"},
        {"max_budget": "12", "team_alias": "Admin made"},
    )


def test_deleting_a_team_deletes_its_keys_through_teams(admin_client, team, other_team, make_key):
    make_key(team=team)
    make_key(team=other_team)

    admin_client.post(f"/admin/tenants/team/{team.pk}/delete/", {"post": "yes"})

    assert list(Team.objects.values_list("team_id", flat=True)) == ["team-b"]
    assert VirtualKey.objects.get().team == other_team
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_id, entry.before["keys"]) == ("delete", "team-a", 1)


def test_deleting_a_user_is_audited(admin_client, make_user):
    user = make_user("ed")

    admin_client.post(f"/admin/tenants/internaluser/{user.pk}/delete/", {"post": "yes"})

    assert not InternalUser.objects.exists()
    assert AuditEntry.objects.get().object_id == "ed"


def test_audit_log_is_read_only_and_filterable(admin_client, api, auth):
    api.post("/team/new", {"team_id": "t-log"}, auth)
    entry = AuditEntry.objects.get()

    listing = admin_client.get("/admin/tenants/auditentry/", {"via": "api", "action": "create"})
    page = admin_client.get(f"/admin/tenants/auditentry/{entry.pk}/change/")

    assert "t-log" in listing.content.decode()
    assert admin_client.get("/admin/tenants/auditentry/", {"via": "admin"}).content.decode().count("t-log") == 0
    assert page.status_code == 200 and "master key" in page.content.decode()
    assert admin_client.post(f"/admin/tenants/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/tenants/auditentry/add/").status_code == 403

"""The team portal: sign-in, who sees which team, what members and team admins may do to keys
and members, and the password reset that gives a member their first password."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from billing.models import UsageRecord
from tenants import keys
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

pytestmark = pytest.mark.django_db


def person(email: str, *, team: Team | None = None, role: str = "user", login: bool = True) -> InternalUser:
    """An internal user, in `team` with `role`, with a portal login (password "pw") unless told not to."""
    user = InternalUser.objects.create(user_id=email.split("@")[0], user_email=email)
    if login:
        user.account = get_user_model().objects.create_user(email, email=email, password="pw")
        user.save()
    if team is not None:
        TeamMembership.objects.create(team=team, user=user, role=role)
    return user


@pytest.fixture
def team(db) -> Team:
    return Team.objects.create(team_id="team-a", team_alias="Search", max_budget=Decimal(50))


@pytest.fixture
def other_team(db) -> Team:
    return Team.objects.create(team_id="team-b", team_alias="Billing")


@pytest.fixture
def admin_a(team) -> InternalUser:
    return person("ada@example.com", team=team, role="admin")


@pytest.fixture
def member_a(team) -> InternalUser:
    return person("max@example.com", team=team)


@pytest.fixture
def member_b(other_team) -> InternalUser:
    return person("bea@example.com", team=other_team, role="admin")


def login(client: Client, user: InternalUser) -> Client:
    client.force_login(user.account)
    return client


# --- signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/portal/", "/portal/teams/team-a/", "/portal/teams/team-a/members/", "/portal/teams/team-a/usage/"]
)
def test_anonymous_is_sent_to_the_portal_login(client, team, path):
    r = client.get(path)
    assert r.status_code == 302 and r["Location"].startswith("/portal/login/?next=")


def test_a_member_signs_in_with_a_password_and_sees_their_teams(client, team, other_team, member_a):
    assert b"Sign in" in client.get("/portal/login/").content
    r = client.post("/portal/login/", {"username": "max@example.com", "password": "pw"}, follow=True)

    assert r.redirect_chain[-1][0] == "/portal/"
    page = r.content.decode()
    assert "Search" in page and "Billing" not in page


def test_a_login_not_linked_to_a_user_is_told_so(client, team):
    client.force_login(get_user_model().objects.create_user("stray", password="pw"))
    for path in ("/portal/", "/portal/teams/team-a/"):
        r = client.get(path)
        assert r.status_code == 403 and b"not linked" in r.content


def test_a_blocked_user_cannot_use_the_portal(client, member_a):
    InternalUser.objects.filter(pk=member_a.pk).update(blocked=True)
    assert login(client, member_a).get("/portal/teams/team-a/").status_code == 403


def test_logout_needs_a_post_and_ends_the_session(client, member_a):
    login(client, member_a)
    r = client.post("/portal/logout/")
    assert r.status_code == 302 and r["Location"] == "/portal/login/"
    assert client.get("/portal/").status_code == 302


# --- nobody sees another team ----------------------------------------------------------------


def test_every_page_of_another_team_is_a_404(client, team, other_team, member_a, member_b):
    theirs, _ = keys.create(team=other_team, user=member_b, key_alias="theirs")
    UsageRecord.objects.create(
        request_id="r",
        started_at=timezone.now(),
        ended_at=timezone.now(),
        endpoint="chat",
        status=200,
        team_id=other_team.team_id,
        model="their-model",
    )
    login(client, member_a)
    base = f"/portal/teams/{other_team.team_id}"

    for path in (f"{base}/", f"{base}/members/", f"{base}/usage/", "/portal/teams/no-such-team/"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert b"Billing" not in r.content and b"their-model" not in r.content
    for path in (
        f"{base}/keys/new",
        f"{base}/keys/{theirs.pk}/block",
        f"{base}/keys/{theirs.pk}/delete",
        f"{base}/members/add",
    ):
        assert client.post(path, {"blocked": "1", "user_email": "max@example.com"}).status_code == 404, path
    # Another team's key named through one's own team is missing too.
    assert client.post(f"/portal/teams/{team.team_id}/keys/{theirs.pk}/delete").status_code == 404
    theirs.refresh_from_db()
    assert not theirs.blocked and TeamMembership.objects.filter(team=other_team).count() == 1


def test_the_usage_tab_shows_the_team_its_own_requests(client, team, other_team, member_a):
    for t, model in ((team, "our-model"), (other_team, "their-model")):
        UsageRecord.objects.create(
            request_id=model,
            started_at=timezone.now(),
            ended_at=timezone.now(),
            endpoint="chat",
            status=200,
            team_id=t.team_id,
            model=model,
        )
    page = login(client, member_a).get("/portal/teams/team-a/usage/?range=24h").content.decode()

    assert "our-model" in page and "their-model" not in page and "<svg" in page
    assert "/dashboard/" not in page  # members get no links into the staff dashboard


# --- keys ------------------------------------------------------------------------------------


def test_team_page_shows_the_budget_and_key_hints_never_the_digest(client, team, member_a):
    Team.objects.filter(pk=team.pk).update(spend=Decimal(20))
    key, secret = keys.create(team=team, user=member_a, key_alias="mine")

    page = login(client, member_a).get("/portal/teams/team-a/").content.decode()

    assert "$50.00" in page and "$30.00" in page  # budget and what is left
    assert key.key_name in page and key.token not in page and secret not in page


def test_a_team_admin_creates_a_key_shown_once(client, team, admin_a):
    login(client, admin_a)
    r = client.post("/portal/teams/team-a/keys/new", {"key_alias": "ci", "max_budget": "5", "duration": "30d"})

    assert r.status_code == 200
    secret = r.context["secret"]
    key = VirtualKey.objects.get(key_alias="ci")
    assert secret.startswith("sk-") and key.token == keys.digest(secret)
    assert (key.team, key.user, key.max_budget) == (team, admin_a, Decimal(5)) and key.expires is not None
    assert "no-store" in r["Cache-Control"]
    again = client.get("/portal/teams/team-a/").content.decode()
    assert secret not in again and key.key_name in again


def test_a_key_cannot_exceed_the_team_budget_or_models(client, team, admin_a):
    Team.objects.filter(pk=team.pk).update(allowed_models=["small"])
    login(client, admin_a)

    over = client.post("/portal/teams/team-a/keys/new", {"key_alias": "big", "max_budget": "500"})
    outside = client.post("/portal/teams/team-a/keys/new", {"key_alias": "odd", "models": ["large"]})
    inside = client.post("/portal/teams/team-a/keys/new", {"key_alias": "ok", "models": ["small"]})

    assert over.status_code == 400 and "cannot exceed the max_budget of team" in over.content.decode()
    assert outside.status_code == 400
    assert inside.status_code == 200
    assert list(VirtualKey.objects.values_list("key_alias", "allowed_models")) == [("ok", ["small"])]


def test_a_member_creates_keys_only_when_the_team_lets_them(client, team, member_a):
    login(client, member_a)
    page = client.get("/portal/teams/team-a/").content.decode()
    refused = client.post("/portal/teams/team-a/keys/new", {"key_alias": "x"})

    assert "Create a key" not in page
    assert refused.status_code == 400 and not VirtualKey.objects.exists()

    Team.objects.filter(pk=team.pk).update(team_member_permissions=["/key/generate"])
    assert client.post("/portal/teams/team-a/keys/new", {"key_alias": "x"}).status_code == 200
    assert VirtualKey.objects.get().user == member_a


def test_a_member_deletes_their_own_key_but_not_anothers_and_blocks_none(client, team, admin_a, member_a):
    mine, _ = keys.create(team=team, user=member_a)
    admins, _ = keys.create(team=team, user=admin_a)
    login(client, member_a)

    assert client.post(f"/portal/teams/team-a/keys/{mine.pk}/block", {"blocked": "1"}).status_code == 403
    assert client.post(f"/portal/teams/team-a/keys/{admins.pk}/delete").status_code == 403
    assert client.post(f"/portal/teams/team-a/keys/{mine.pk}/delete").status_code == 302

    assert list(VirtualKey.objects.all()) == [admins] and not admins.blocked


def test_a_team_admin_blocks_unblocks_and_deletes_any_team_key(client, team, admin_a, member_a):
    theirs, _ = keys.create(team=team, user=member_a)
    login(client, admin_a)

    client.post(f"/portal/teams/team-a/keys/{theirs.pk}/block", {"blocked": "1"})
    theirs.refresh_from_db()
    assert theirs.blocked
    client.post(f"/portal/teams/team-a/keys/{theirs.pk}/block", {"blocked": "0"})
    theirs.refresh_from_db()
    assert not theirs.blocked
    client.post(f"/portal/teams/team-a/keys/{theirs.pk}/delete")
    assert not VirtualKey.objects.exists()


def test_forms_need_the_csrf_token(team, admin_a):
    client = login(Client(enforce_csrf_checks=True), admin_a)
    assert client.post("/portal/teams/team-a/keys/new", {"key_alias": "x"}).status_code == 403
    page = client.get("/portal/teams/team-a/").content.decode()
    assert page.count('name="csrfmiddlewaretoken"') >= 2  # log out, and create
    assert not VirtualKey.objects.exists()


def test_actions_refuse_get(client, team, admin_a):
    key, _ = keys.create(team=team, user=admin_a)
    login(client, admin_a)
    assert client.get(f"/portal/teams/team-a/keys/{key.pk}/delete").status_code == 405


# --- members ---------------------------------------------------------------------------------


def test_only_a_team_admin_manages_members(client, team, member_a, admin_a):
    person("new@example.com")
    login(client, member_a)
    assert client.get("/portal/teams/team-a/members/").status_code == 403
    assert (
        client.post("/portal/teams/team-a/members/add", {"user_email": "new@example.com", "role": "user"}).status_code
        == 403
    )
    admin_membership = TeamMembership.objects.get(user=admin_a)
    assert client.post(f"/portal/teams/team-a/members/{admin_membership.pk}/remove").status_code == 403
    assert TeamMembership.objects.filter(team=team).count() == 2


def test_a_team_admin_adds_changes_and_removes_members(client, team, admin_a, member_a):
    newcomer = person("new@example.com")
    login(client, admin_a)
    assert "max@example.com" in client.get("/portal/teams/team-a/members/").content.decode()

    r = client.post("/portal/teams/team-a/members/add", {"user_email": "NEW@example.com", "role": "user"})
    assert r.status_code == 302
    added = TeamMembership.objects.get(team=team, user=newcomer)
    client.post(f"/portal/teams/team-a/members/{added.pk}/role", {"role": "admin"})
    added.refresh_from_db()
    assert added.role == "admin"
    client.post(f"/portal/teams/team-a/members/{TeamMembership.objects.get(user=member_a).pk}/remove")
    assert set(TeamMembership.objects.filter(team=team).values_list("user__user_email", flat=True)) == {
        "ada@example.com",
        "new@example.com",
    }


def test_adding_an_unknown_or_present_member_explains_why_not(client, team, admin_a, member_a):
    login(client, admin_a)
    unknown = client.post("/portal/teams/team-a/members/add", {"user_email": "who@example.com", "role": "user"})
    present = client.post("/portal/teams/team-a/members/add", {"user_email": "max@example.com", "role": "user"})

    assert unknown.status_code == 400 and "No Tollgate user has this email" in unknown.content.decode()
    assert present.status_code == 400 and "already a member" in present.content.decode()


def test_the_last_admin_can_be_neither_demoted_nor_removed(client, team, admin_a):
    mine = TeamMembership.objects.get(user=admin_a)
    login(client, admin_a)
    assert client.post(f"/portal/teams/team-a/members/{mine.pk}/role", {"role": "user"}).status_code == 403
    assert client.post(f"/portal/teams/team-a/members/{mine.pk}/remove").status_code == 403
    mine.refresh_from_db()
    assert mine.role == "admin"


def test_an_admin_who_steps_down_lands_on_the_team_page(client, team, admin_a):
    second = person("sam@example.com", team=team, role="admin")
    mine = TeamMembership.objects.get(user=admin_a)
    login(client, admin_a)

    r = client.post(f"/portal/teams/team-a/members/{mine.pk}/role", {"role": "user"})

    assert r["Location"] == "/portal/teams/team-a/"
    assert client.get("/portal/teams/team-a/members/").status_code == 403
    assert TeamMembership.objects.get(user=second).role == "admin"


def test_a_member_of_another_team_cannot_be_changed_through_mine(client, team, other_team, admin_a, member_b):
    theirs = TeamMembership.objects.get(user=member_b)
    login(client, admin_a)
    assert client.post(f"/portal/teams/team-a/members/{theirs.pk}/remove").status_code == 404
    assert client.post(f"/portal/teams/team-a/members/{theirs.pk}/role", {"role": "user"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == "admin"


# --- password reset --------------------------------------------------------------------------


def test_a_member_without_a_login_sets_a_first_password_by_email(client, team):
    newcomer = person("nia@example.com", team=team, login=False)

    r = client.post("/portal/password-reset/", {"email": "Nia@Example.com"})

    assert r.status_code == 302 and r["Location"] == "/portal/password-reset/sent/"
    newcomer.refresh_from_db()
    assert newcomer.account is not None and newcomer.account.username == "nia@example.com"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nia@example.com"]
    link = re.search(r"http://testserver(/portal/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-long-passphrase-1", "new_password2": "a-long-passphrase-1"}
    )
    assert done["Location"] == "/portal/password-reset/done/"
    assert client.login(username="nia@example.com", password="a-long-passphrase-1")
    assert client.get("/portal/teams/team-a/").status_code == 200


def test_password_reset_sends_nothing_to_strangers_and_makes_no_login(client, team):
    person("solo@example.com", login=False)  # in no team

    for email in ("nobody@example.com", "solo@example.com"):
        assert client.post("/portal/password-reset/", {"email": email}).status_code == 302
    assert mail.outbox == [] and not get_user_model().objects.exists()


def test_reset_links_name_the_public_host_when_one_is_set(client, team, settings):
    settings.TOLLGATE_PUBLIC_HOST = "tollgate.example.com"
    person("nia@example.com", team=team, login=False)

    client.post("/portal/password-reset/", {"email": "nia@example.com"}, HTTP_HOST="evil.example.net")

    assert "http://tollgate.example.com/portal/password-reset/" in mail.outbox[0].body, mail.outbox[0].body
    assert "evil" not in mail.outbox[0].body

"""/team/* through the views: LiteLLM's shapes, Tollgate's statuses, two teams that never see each other."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants import durations
from tenants.auth import MASTER_USER_ID
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey
from tests.tenants.conftest import bearer, error_of

pytestmark = pytest.mark.django_db


# --- /team/new --------------------------------------------------------------------------------------


def test_team_new_creates_the_team_and_its_members(api, auth, make_user):
    make_user("dave", user_email="dave@example.com")
    now = timezone.now()

    r = api.post(
        "/team/new",
        {
            "team_id": "team-c",
            "team_alias": "Team C",
            "members_with_roles": [
                {"role": "admin", "user_id": "dave"},
                {"role": "user", "user_email": "erin@example.com"},
            ],
            "models": ["small"],
            "model_aliases": {"fast": "small"},
            "max_budget": 12.5,
            "soft_budget": 10,
            "budget_duration": "1d",
            "tpm_limit": 1000,
            "rpm_limit": 10,
            "max_parallel_requests": 2,
            "metadata": {"cost_centre": "42"},
            "team_member_permissions": ["/key/generate"],
            "unknown_field": "dropped, as LiteLLM does",
        },
        auth,
    )

    assert r.status_code == 200, r.content
    row = r.json()
    assert row["team_id"] == "team-c"
    assert row["team_alias"] == "Team C"
    assert row["models"] == ["small"]
    assert row["model_aliases"] == {"fast": "small"}
    assert row["litellm_model_table"] == {"model_aliases": {"fast": "small"}}
    assert (row["max_budget"], row["soft_budget"], row["spend"]) == (12.5, 10.0, 0.0)
    assert (row["tpm_limit"], row["rpm_limit"], row["max_parallel_requests"]) == (1000, 10, 2)
    assert row["metadata"] == {"cost_centre": "42"}
    assert row["team_member_permissions"] == ["/key/generate"]
    assert row["blocked"] is False
    assert row["budget_duration"] == "1d"
    erin = InternalUser.objects.get(user_email="erin@example.com")
    # The master key's `default_user_id` has no user row, so unlike LiteLLM it is not a member.
    assert row["members_with_roles"] == [
        {"role": "admin", "user_id": "dave", "user_email": "dave@example.com"},
        {"role": "user", "user_id": erin.user_id, "user_email": "erin@example.com"},
    ]
    assert not InternalUser.objects.filter(user_id=MASTER_USER_ID).exists()
    team = Team.objects.get(team_id="team-c")
    assert team.allowed_models == ["small"]
    assert team.budget_reset_at == durations.next_reset("1d", now)
    assert "unknown_field" not in row


def test_team_new_without_team_id_generates_one(api, auth):
    r = api.post("/team/new", {}, auth)

    assert r.status_code == 200
    row = r.json()
    assert len(row["team_id"]) == 36
    assert row["team_alias"] is None and row["members_with_roles"] == [] and row["models"] == []
    assert row["max_budget"] is None and row["budget_reset_at"] is None


def test_team_new_by_a_proxy_admin_user_makes_them_team_admin(api, make_user, make_key):
    root = make_user("root", user_role="proxy_admin")
    _, secret = make_key(user=root)

    r = api.post("/team/new", {"team_alias": "Ops"}, bearer(secret))

    assert r.status_code == 200
    assert r.json()["members_with_roles"] == [{"role": "admin", "user_id": "root", "user_email": None}]


def test_team_new_with_a_taken_team_id_is_400(api, auth, team):
    error = error_of(api.post("/team/new", {"team_id": "team-a"}, auth), 400)

    assert error["param"] == "team_id"
    assert "already exists" in error["message"]
    assert Team.objects.count() == 1


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/team/new", {"max_budget": -1}, "max_budget"),
        ("/team/new", {"max_budget": "lots"}, "max_budget"),
        ("/team/new", {"budget_duration": "soon"}, "budget_duration"),
        ("/team/new", {"tpm_limit": "many"}, "tpm_limit"),
        ("/team/new", {"rpm_limit": -5}, "rpm_limit"),
        ("/team/new", {"models": "small"}, "models"),
        ("/team/new", {"metadata": ["a"]}, "metadata"),
        ("/team/new", {"blocked": "perhaps"}, "blocked"),
        ("/team/new", {"members_with_roles": [{"role": "owner", "user_id": "x"}]}, "members_with_roles"),
        (
            "/team/new",
            {"members_with_roles": [{"role": "user", "user_id": "x"}, {"role": "user"}]},
            "members_with_roles",
        ),
        ("/team/update", {"team_alias": "no id"}, "team_id"),
        ("/team/update", {"team_id": "team-a", "soft_budget": -1}, "soft_budget"),
        ("/team/delete", {"team_ids": []}, "team_ids"),
        ("/team/delete", {}, "team_ids"),
        ("/team/member_add", {"team_id": "team-a"}, "member"),
        ("/team/member_add", {"team_id": "team-a", "member": {"role": "admin"}}, "member"),
        ("/team/member_add", {"team_id": "team-a", "member": "bob"}, "member"),
        ("/team/member_add", {"team_id": "team-a", "member": []}, "member"),
        ("/team/member_add", {"member": {"role": "user", "user_id": "x"}}, "team_id"),
        (
            "/team/member_add",
            {"team_id": "team-a", "member": {"role": "user", "user_id": "x"}, "max_budget_in_team": -1},
            "max_budget_in_team",
        ),
        ("/team/member_delete", {"team_id": "team-a"}, "user_id"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, auth, team, path, body, field):
    before = (Team.objects.count(), TeamMembership.objects.count(), InternalUser.objects.count())

    error = error_of(api.post(path, body, auth), 400)

    assert error["param"] == field
    assert error["message"].startswith(f"{field}: ")
    assert error["type"] == "invalid_request_error"
    assert (Team.objects.count(), TeamMembership.objects.count(), InternalUser.objects.count()) == before


def test_malformed_json_is_400(api, auth):
    r = api.client.post("/team/new", data="{", content_type="application/json", **auth)

    assert error_of(r, 400)["type"] == "invalid_request_error"


def test_team_info_without_team_id_is_400(api, auth):
    assert error_of(api.get("/team/info", auth), 400)["param"] == "team_id"


# --- /team/update, /team/delete -------------------------------------------------------------------------


def test_team_update_changes_only_the_fields_sent(api, auth, team):
    Team.objects.filter(pk=team.pk).update(max_budget=5, metadata={"old": True}, tpm_limit=100)
    now = timezone.now()

    r = api.post(
        "/team/update",
        {"team_id": "team-a", "team_alias": "A2", "budget_duration": "1h", "metadata": {"new": 1}, "max_budget": None},
        auth,
    )

    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"team_id", "data"}
    assert body["team_id"] == "team-a"
    data = body["data"]
    assert data["team_alias"] == "A2"
    assert data["metadata"] == {"new": 1}  # replaced, as in LiteLLM
    assert data["max_budget"] is None  # null clears
    assert data["tpm_limit"] == 100  # not sent: kept
    team.refresh_from_db()
    assert team.budget_reset_at == durations.next_reset("1h", now)
    assert team.budget_reset_at - now <= timedelta(hours=1)


def test_team_update_of_an_unknown_team_is_404(api, auth):
    error = error_of(api.post("/team/update", {"team_id": "nope", "blocked": True}, auth), 404)

    assert error["message"] == "Team not found, passed team_id=nope"
    assert error["param"] == "team_id"


def test_team_delete_deletes_the_teams_and_their_keys_but_not_the_users(api, auth, team, other_team, alice, make_key):
    make_key(team=team)
    make_key(user=alice, team=team)
    kept, _ = make_key(team=other_team)

    r = api.post("/team/delete", {"team_ids": ["team-a"]}, auth)

    assert r.status_code == 200
    assert r.json() == {"deleted_teams": ["team-a"]}
    assert list(Team.objects.values_list("team_id", flat=True)) == ["team-b"]
    assert list(VirtualKey.objects.all()) == [kept]
    assert InternalUser.objects.filter(user_id="alice").exists()
    assert not TeamMembership.objects.filter(user=alice).exists()


def test_team_delete_with_one_unknown_id_deletes_nothing(api, auth, team, make_key):
    make_key(team=team)

    error = error_of(api.post("/team/delete", {"team_ids": ["team-a", "nope"]}, auth), 404)

    assert "nope" in error["message"]
    assert Team.objects.count() == 1 and VirtualKey.objects.count() == 1


# --- /team/info, /team/list -----------------------------------------------------------------------------


def test_team_info_has_the_team_its_keys_and_memberships(api, auth, team, other_team, alice, make_key):
    TeamMembership.objects.filter(user=alice).update(max_budget_in_team=3)
    key, _ = make_key(team=team, user=alice, key_alias="alice-a")
    make_key(team=other_team)

    r = api.get("/team/info", auth, team_id="team-a")

    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"team_id", "team_info", "keys", "team_memberships"}
    assert body["team_id"] == "team-a"
    assert body["team_info"]["team_alias"] == "Team A"
    assert body["team_info"]["members_with_roles"] == [
        {"role": "admin", "user_id": "alice", "user_email": "alice@example.com"}
    ]
    assert [k["token"] for k in body["keys"]] == [key.token]
    assert body["keys"][0]["key_alias"] == "alice-a"
    assert (body["keys"][0]["team_id"], body["keys"][0]["user_id"]) == ("team-a", "alice")
    assert body["team_memberships"] == [
        {
            "user_id": "alice",
            "team_id": "team-a",
            "role": "admin",
            "budget_id": None,
            "spend": 0.0,
            "litellm_budget_table": {"max_budget": 3.0, "budget_duration": None},
        }
    ]


def test_team_list_is_a_bare_array_sorted_by_alias(api, auth, team, other_team, alice, carol):
    r = api.get("/team/list", auth)

    assert r.status_code == 200
    rows = r.json()
    assert [t["team_id"] for t in rows] == ["team-a", "team-b"]
    assert {"team_memberships", "keys", "members_with_roles"} <= set(rows[0])
    assert [t["team_id"] for t in api.get("/team/list", auth, user_id="carol").json()] == ["team-b"]


def test_team_info_and_list_take_a_fixed_number_of_queries(
    api, auth, team, other_team, make_user, make_key, django_assert_max_num_queries
):
    for n in range(5):
        user = make_user(f"u{n}", team=team)
        make_key(team=team, user=user)
        make_key(team=other_team)

    with django_assert_max_num_queries(10):
        assert len(api.get("/team/list", auth).json()) == 2
    with django_assert_max_num_queries(10):
        assert len(api.get("/team/info", auth, team_id="team-a").json()["keys"]) == 5


# --- /team/member_add, /team/member_delete --------------------------------------------------------------


def test_member_add_takes_one_member(api, auth, team, make_user):
    make_user("dave")

    r = api.post("/team/member_add", {"team_id": "team-a", "member": {"role": "user", "user_id": "dave"}}, auth)

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["team_id"] == "team-a"
    assert body["members_with_roles"] == [{"role": "user", "user_id": "dave", "user_email": None}]
    assert [u["user_id"] for u in body["updated_users"]] == ["dave"]
    assert body["updated_users"][0]["teams"] == ["team-a"]
    assert body["updated_team_memberships"][0]["user_id"] == "dave"


def test_member_add_takes_a_list_creates_unknown_users_and_sets_their_team_budget(api, auth, team, bob):
    r = api.post(
        "/team/member_add",
        {
            "team_id": "team-a",
            "member": [
                {"role": "admin", "user_email": "Erin@Example.com"},
                {"role": "user", "user_id": "frank"},
                {"role": "user", "user_id": "bob"},  # already in: skipped quietly
            ],
            "max_budget_in_team": 2.5,
        },
        auth,
    )

    assert r.status_code == 200, r.content
    erin = InternalUser.objects.get(user_email="Erin@Example.com")
    assert [u["user_id"] for u in r.json()["updated_users"]] == [erin.user_id, "frank"]
    assert TeamMembership.objects.get(user=erin).role == "admin"
    assert TeamMembership.objects.get(user__user_id="frank").max_budget_in_team == 2.5
    assert TeamMembership.objects.get(user=bob).max_budget_in_team is None


def test_member_add_finds_users_by_email_whatever_the_case(api, auth, team, make_user):
    dave = make_user("dave", user_email="dave@example.com")

    r = api.post(
        "/team/member_add", {"team_id": "team-a", "member": {"role": "user", "user_email": "DAVE@example.com"}}, auth
    )

    assert r.status_code == 200
    assert TeamMembership.objects.filter(team=team, user=dave).exists()
    assert InternalUser.objects.count() == 1


def test_member_add_of_members_all_in_the_team_is_400(api, auth, team, bob):
    error = error_of(
        api.post("/team/member_add", {"team_id": "team-a", "member": {"role": "admin", "user_id": "bob"}}, auth), 400
    )

    assert error["code"] == "team_member_already_in_team"
    assert TeamMembership.objects.get(user=bob).role == "user"


def test_member_delete_removes_the_member_and_keeps_their_keys(api, auth, team, bob, make_key):
    make_key(user=bob, team=team)

    r = api.post("/team/member_delete", {"team_id": "team-a", "user_email": "BOB@example.com"}, auth)

    assert r.status_code == 200, r.content
    assert r.json()["members_with_roles"] == []
    assert not TeamMembership.objects.filter(user=bob).exists()
    assert VirtualKey.objects.filter(user=bob).count() == 1


def test_member_delete_of_a_user_not_in_the_team_is_400(api, auth, team, carol):
    error = error_of(api.post("/team/member_delete", {"team_id": "team-a", "user_id": "carol"}, auth), 400)

    assert error["param"] == "user_id"
    assert TeamMembership.objects.filter(user=carol).exists()

"""/user/* through the views: LiteLLM's shapes, Tollgate's statuses, two teams that never see each other."""

import pytest
from django.utils import timezone

from tenants import durations, keys
from tenants.models import InternalUser, TeamMembership, VirtualKey
from tests.tenants.conftest import bearer, chat, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(make_user, other_team):
    """A member of team B only."""
    return make_user("carol", team=other_team)


# --- /user/new --------------------------------------------------------------------------------------------


def test_user_new_creates_the_user_seats_them_and_returns_a_working_key(api, client, auth, team, other_team, small):
    now = timezone.now()

    r = api.post(
        "/user/new",
        {
            "user_id": "dave",
            "user_email": "dave@example.com",
            "user_alias": "Dave",
            "user_role": "internal_user",
            "teams": ["team-a", {"team_id": "team-b", "user_role": "admin", "max_budget_in_team": 4}],
            "models": ["small"],
            "max_budget": 20,
            "budget_duration": "7d",
            "tpm_limit": 1000,
            "rpm_limit": 60,
            "max_parallel_requests": 3,
            "metadata": {"desk": "7"},
            "key_alias": "dave-laptop",
            "duration": "30d",
        },
        auth,
    )

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["key"].startswith("sk-")
    assert body["token"] == body["token_id"] == keys.digest(body["key"])
    assert body["key_name"] == keys.hint(body["key"])
    assert body["key_alias"] == "dave-laptop"
    assert body["expires"] is not None and body["duration"] is None
    assert (body["user_id"], body["user_email"], body["user_alias"], body["user_role"]) == (
        "dave",
        "dave@example.com",
        "Dave",
        "internal_user",
    )
    assert body["teams"] == ["team-a", "team-b"]
    assert (body["models"], body["max_budget"], body["budget_duration"]) == (["small"], 20.0, "7d")
    assert (body["tpm_limit"], body["rpm_limit"], body["max_parallel_requests"]) == (1000, 60, 3)
    assert body["metadata"] == {"desk": "7"}
    assert body["created_by"] == "default_user_id"
    user = InternalUser.objects.get(user_id="dave")
    assert user.budget_reset_at == durations.next_reset("7d", now)
    seat = TeamMembership.objects.get(user=user, team=other_team)
    assert (seat.role, seat.max_budget_in_team) == ("admin", 4)
    key = VirtualKey.objects.get(user=user)
    assert key.max_budget is None and key.team is None  # the user's budget applies, as in LiteLLM
    assert chat(client, bearer(body["key"])).status_code == 200


def test_user_new_without_a_key(api, auth):
    r = api.post("/user/new", {"user_email": "erin@example.com", "auto_create_key": False}, auth)

    assert r.status_code == 200
    body = r.json()
    assert body["key"] == "" and body["token"] is None
    assert len(body["user_id"]) == 36
    assert body["user_role"] == "internal_user"
    assert not VirtualKey.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"user_id": "bob"}, 409, "user_id"),
        ({"user_email": "BOB@example.com"}, 409, "user_email"),
        ({"teams": ["team-z"]}, 400, "teams"),
        ({"key_alias": "taken"}, 400, "key_alias"),
    ],
)
def test_user_new_refuses_what_is_taken_or_unknown(api, auth, bob, make_key, body, status, field):
    make_key(user=bob, key_alias="taken")

    error = error_of(api.post("/user/new", {"user_id": "new", **body} if "user_id" not in body else body, auth), status)

    assert error["param"] == field
    assert not InternalUser.objects.filter(user_id="new").exists()
    assert VirtualKey.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/user/new", {"user_role": "boss"}, "user_role"),
        ("/user/new", {"max_budget": -1}, "max_budget"),
        ("/user/new", {"budget_duration": "weekly"}, "budget_duration"),
        ("/user/new", {"duration": "forever"}, "duration"),
        ("/user/new", {"tpm_limit": -1}, "tpm_limit"),
        ("/user/new", {"models": [1, {}]}, "models"),
        ("/user/new", {"teams": [{"user_role": "user"}]}, "teams"),
        ("/user/new", {"teams": [{"team_id": "team-a", "user_role": "owner"}]}, "teams"),
        ("/user/new", {"teams": "team-a"}, "teams"),
        ("/user/new", {"auto_create_key": "maybe"}, "auto_create_key"),
        ("/user/update", {"max_budget": 5}, "user_id"),
        ("/user/update", {"user_id": "bob", "rpm_limit": "fast"}, "rpm_limit"),
        ("/user/delete", {"user_ids": []}, "user_ids"),
        ("/user/delete", {"user_ids": "bob"}, "user_ids"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, auth, team, bob, path, body, field):
    before = (InternalUser.objects.count(), VirtualKey.objects.count())

    error = error_of(api.post(path, body, auth), 400)

    assert error["param"] == field
    assert error["message"].startswith(f"{field}: ")
    assert (InternalUser.objects.count(), VirtualKey.objects.count()) == before
    assert InternalUser.objects.get(user_id="bob").rpm_limit is None


# --- /user/info -----------------------------------------------------------------------------------------------


def test_user_info_has_the_user_their_keys_and_teams(api, auth, team, other_team, bob, make_key):
    TeamMembership.objects.create(team=other_team, user=bob)
    key, _ = make_key(user=bob, team=team)
    make_key(team=team)

    r = api.get("/user/info", auth, user_id="bob")

    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"user_id", "user_info", "keys", "teams"}
    assert body["user_id"] == "bob"
    assert body["user_info"]["user_email"] == "bob@example.com"
    assert body["user_info"]["teams"] == ["team-a", "team-b"]
    assert [k["token"] for k in body["keys"]] == [key.token]
    assert body["keys"][0]["team_alias"] == "Team A"
    assert [t["team_id"] for t in body["teams"]] == ["team-a", "team-b"]
    assert body["teams"][0]["members_with_roles"] == [
        {"role": "user", "user_id": "bob", "user_email": "bob@example.com"}
    ]


def test_user_info_keeps_a_plus_in_the_user_id(api, auth, make_user):
    make_user("ann+test@example.com")

    r = api.client.get("/user/info?user_id=ann+test@example.com", **auth)

    assert r.status_code == 200
    assert r.json()["user_id"] == "ann+test@example.com"


def test_user_info_for_the_master_key_without_user_id_lists_everything(api, auth, team, other_team, make_key):
    make_key(team=team)
    make_key(team=other_team)

    body = api.get("/user/info", auth).json()

    assert body["user_id"] == "default_user_id"
    assert body["user_info"] is None
    assert len(body["keys"]) == 2
    assert [t["team_id"] for t in body["teams"]] == ["team-a", "team-b"]


def test_user_info_of_an_unknown_user_is_404(api, auth):
    error = error_of(api.get("/user/info", auth, user_id="nope"), 404)

    assert error["message"] == "User not found, passed user_id=nope"


def test_a_user_reads_themself_with_or_without_user_id(api, bob, bob_key):
    mine = api.get("/user/info", bob_key)
    named = api.get("/user/info", bob_key, user_id="bob")

    assert mine.status_code == named.status_code == 200
    assert mine.json()["user_id"] == "bob"
    assert mine.json()["keys"] == named.json()["keys"]
    assert len(mine.json()["keys"]) == 1


def test_team_admin_reads_members_of_their_team_only_as_far_as_their_team(
    api, team, other_team, alice_key, bob, carol, make_key
):
    TeamMembership.objects.create(team=other_team, user=bob)
    in_a, _ = make_key(user=bob, team=team)
    make_key(user=bob, team=other_team)
    make_key(user=bob)  # personal

    body = api.get("/user/info", alice_key, user_id="bob").json()

    assert body["user_info"]["teams"] == ["team-a"]
    assert [t["team_id"] for t in body["teams"]] == ["team-a"]
    assert [k["token"] for k in body["keys"]] == [in_a.token]
    missing = error_of(api.get("/user/info", alice_key, user_id="nope"), 404)
    hidden = error_of(api.get("/user/info", alice_key, user_id="carol"), 404)
    assert hidden["message"] == missing["message"].replace("nope", "carol")


def test_plain_member_may_not_read_a_teammate(api, alice, bob_key, carol):
    assert error_of(api.get("/user/info", bob_key, user_id="alice"), 403)["type"] == "permission_error"
    error_of(api.get("/user/info", bob_key, user_id="carol"), 404)


def test_a_key_without_a_user_must_name_one(api, team, make_key):
    _, secret = make_key(team=team)

    assert error_of(api.get("/user/info", bearer(secret)), 400)["param"] == "user_id"


# --- /user/update, /user/delete --------------------------------------------------------------------------------


def test_user_update_changes_the_fields_sent(api, auth, bob):
    InternalUser.objects.filter(pk=bob.pk).update(max_budget=5, allowed_models=["small"], tpm_limit=10)
    now = timezone.now()

    r = api.post(
        "/user/update",
        {
            "user_id": "bob",
            "user_alias": "Bobby",
            "user_role": "internal_user_viewer",
            "budget_duration": "1d",
            "models": [],  # empty: left as it is, as in LiteLLM
            "tpm_limit": None,  # null: left as it is, as in LiteLLM
        },
        auth,
    )

    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"user_id", "data"}
    data = body["data"]
    assert (data["user_alias"], data["user_role"], data["budget_duration"]) == (
        "Bobby",
        "internal_user_viewer",
        "1d",
    )
    assert (data["models"], data["tpm_limit"], data["max_budget"]) == (["small"], 10, 5.0)
    assert data["teams"] == ["team-a"]
    bob.refresh_from_db()
    assert bob.budget_reset_at == durations.next_reset("1d", now)


def test_user_update_max_budget_null_clears_it_and_finds_users_by_email(api, auth, bob):
    InternalUser.objects.filter(pk=bob.pk).update(max_budget=5)

    r = api.post("/user/update", {"user_email": "BOB@example.com", "max_budget": None}, auth)

    assert r.status_code == 200
    assert r.json()["user_id"] == "bob" and r.json()["data"]["max_budget"] is None


def test_user_update_of_an_unknown_user_is_404_not_an_insert(api, auth):
    error_of(api.post("/user/update", {"user_id": "nope", "max_budget": 1}, auth), 404)
    error_of(api.post("/user/update", {"user_email": "nope@example.com", "max_budget": 1}, auth), 404)

    assert not InternalUser.objects.exists()


def test_user_update_to_an_email_someone_has_is_409(api, auth, alice, bob):
    error = error_of(api.post("/user/update", {"user_id": "bob", "user_email": "Alice@example.com"}, auth), 409)

    assert error["param"] == "user_email"


def test_user_delete_deletes_users_and_keys_and_answers_the_count(api, auth, team, bob, carol, alice, make_key):
    make_key(user=bob)
    make_key(user=carol, team=team)
    kept, _ = make_key(user=alice)

    r = api.post("/user/delete", {"user_ids": ["bob", "carol"]}, auth)

    assert r.status_code == 200
    assert r.json() == 2
    assert list(InternalUser.objects.values_list("user_id", flat=True)) == ["alice"]
    assert list(VirtualKey.objects.all()) == [kept]
    assert list(TeamMembership.objects.values_list("user__user_id", flat=True)) == ["alice"]


def test_user_delete_with_one_unknown_id_deletes_nothing(api, auth, bob, make_key):
    make_key(user=bob)

    error = error_of(api.post("/user/delete", {"user_ids": ["bob", "nope"]}, auth), 404)

    assert "nope" in error["message"]
    assert InternalUser.objects.count() == 1 and VirtualKey.objects.count() == 1


# --- who may do what -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/user/new", {"user_id": "new", "teams": ["team-a"]}),
        ("/user/update", {"user_id": "bob", "max_budget": 1000}),
        ("/user/delete", {"user_ids": ["bob"]}),
    ],
)
def test_only_proxy_admins_create_change_and_delete_users(api, team, alice_key, bob, path, body):
    error = error_of(api.post(path, body, alice_key), 403)

    assert error["type"] == "permission_error"
    assert list(InternalUser.objects.order_by("user_id").values_list("user_id", "max_budget")) == [
        ("alice", None),
        ("bob", None),
    ]


def test_a_proxy_admin_users_key_manages_users(api, make_user, make_key):
    root = make_user("root", user_role="proxy_admin")
    _, secret = make_key(user=root)

    r = api.post("/user/new", {"user_id": "new"}, bearer(secret))

    assert r.status_code == 200
    assert r.json()["created_by"] == "root"
    assert api.get("/user/info", bearer(secret), user_id="new").status_code == 200


# --- the effect on the LLM API -----------------------------------------------------------------------------------


def test_blocking_a_user_refuses_their_keys(api, client, auth, bob, bob_key, small):
    assert chat(client, bob_key).status_code == 200

    assert api.post("/user/update", {"user_id": "bob", "blocked": True}, auth).status_code == 200

    assert error_of(chat(client, bob_key), 401)["code"] == "user_blocked"


def test_user_models_limit_their_personal_keys(api, client, auth, bob, bob_key, small, deployment_for):
    deployment_for(None, alias="large", model="mistral/y", mock_response="hi")

    assert api.post("/user/update", {"user_id": "bob", "models": ["small"]}, auth).status_code == 200

    assert "Allowed: small" in error_of(chat(client, bob_key, model="large"), 403)["message"]
    assert chat(client, bob_key).status_code == 200


def test_deleting_a_user_refuses_their_keys(api, client, auth, bob, bob_key, small):
    assert chat(client, bob_key).status_code == 200

    assert api.post("/user/delete", {"user_ids": ["bob"]}, auth).json() == 1

    error_of(chat(client, bob_key), 401)

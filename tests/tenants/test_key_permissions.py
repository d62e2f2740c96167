"""Who may do what on /key/*, with two teams: A (alice admin, bob member) and B (carol admin).

Another team's key answers exactly as a missing key (404); a key the caller can see but not
change answers 403; so does creating keys where the caller has no say.
"""

from decimal import Decimal

import pytest

from tenants.models import InternalUser, VirtualKey
from tests.tenants.conftest import bearer

pytestmark = pytest.mark.django_db
MISSING = "sk-missing-0123456789abcdef"


@pytest.fixture
def as_alice(make_key, alice):
    return bearer(make_key(user=alice)[1])


@pytest.fixture
def as_bob(make_key, bob):
    return bearer(make_key(user=bob)[1])


@pytest.fixture
def a_key(make_key, team, bob):
    """Bob's key in team A."""
    return make_key(team=team, user=bob, key_alias="a-bob")[0]


@pytest.fixture
def a_service(make_key, team):
    """Team A's key without a user."""
    return make_key(team=team, key_alias="a-service")


@pytest.fixture
def b_key(make_key, other_team, carol):
    return make_key(team=other_team, user=carol, key_alias="b-carol")[0]


def status_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()


def missing_answer(api, headers, path: str) -> dict:
    """What the route says about a key that does not exist, to compare a hidden key's answer with."""
    return api.post(path, {"key": MISSING}, headers).json()


# --- a team admin ----------------------------------------------------------------------------


def test_team_admin_generates_keys_for_their_team_as_themselves(api, as_alice, team):
    body = status_of(api.post("/key/generate", {"team_id": "team-a", "models": ["small"]}, as_alice), 200)

    assert (body["team_id"], body["user_id"], body["created_by"]) == ("team-a", "alice", "alice")


def test_team_admin_gets_403_creating_keys_in_another_team(api, as_alice, other_team):
    error = status_of(api.post("/key/generate", {"team_id": "team-b"}, as_alice), 403)["error"]

    assert error["param"] == "team_id" and error["type"] == "permission_error"
    assert not VirtualKey.objects.filter(team=other_team).exists()


def test_team_admin_may_not_create_keys_for_another_user(api, as_alice, bob):
    error = status_of(api.post("/key/generate", {"team_id": "team-a", "user_id": "bob"}, as_alice), 403)["error"]

    assert error["param"] == "user_id"


def test_team_admin_keys_stay_within_the_teams_models_and_budget(api, as_alice, team):
    team.allowed_models = ["small"]
    team.max_budget = Decimal("5")
    team.save()

    models = status_of(api.post("/key/generate", {"team_id": "team-a", "models": ["big"]}, as_alice), 400)
    budget = status_of(api.post("/key/generate", {"team_id": "team-a", "max_budget": 6}, as_alice), 400)

    assert models["error"]["param"] == "models" and budget["error"]["param"] == "max_budget"


def test_team_admin_lists_their_teams_keys_and_no_others(api, as_alice, a_key, a_service, b_key):
    body = status_of(api.get("/key/list", as_alice, return_full_object="true", size=100), 200)
    other = status_of(api.get("/key/list", as_alice, team_id="team-b"), 200)

    aliases = {k["key_alias"] for k in body["keys"]}
    assert {"a-bob", "a-service"} <= aliases and "b-carol" not in aliases
    assert other == {"keys": [], "total_count": 0, "current_page": 1, "total_pages": 0}


def test_team_admin_reads_their_teams_keys_and_gets_404_for_another_teams(api, as_alice, a_key, b_key):
    assert status_of(api.get("/key/info", as_alice, key=a_key.token), 200)["info"]["key_alias"] == "a-bob"

    hidden = status_of(api.get("/key/info", as_alice, key=b_key.token), 404)
    assert hidden == status_of(api.get("/key/info", as_alice, key=MISSING), 404)


@pytest.mark.parametrize("path", ["/key/block", "/key/unblock", "/key/regenerate", "/key/update"])
def test_team_admin_changes_their_teams_keys_and_gets_404_for_another_teams(api, as_alice, a_key, b_key, path):
    assert status_of(api.post(path, {"key": a_key.token}, as_alice), 200)

    assert status_of(api.post(path, {"key": b_key.token}, as_alice), 404) == missing_answer(api, as_alice, path)
    assert VirtualKey.objects.get(pk=b_key.pk).token == b_key.token


def test_team_admin_blocks_their_teams_key(api, as_alice, a_key):
    assert status_of(api.post("/key/block", {"key": a_key.token}, as_alice), 200)["blocked"] is True


def test_team_admin_changes_the_budget_of_their_teams_keys(api, as_alice, a_key):
    body = status_of(api.post("/key/update", {"key": a_key.token, "max_budget": 3}, as_alice), 200)

    assert body["max_budget"] == 3


def test_team_admin_deletes_their_teams_keys_but_nothing_when_one_is_another_teams(api, as_alice, a_key, b_key):
    status_of(api.post("/key/delete", {"keys": [a_key.token, b_key.token]}, as_alice), 404)
    assert VirtualKey.objects.filter(pk__in=[a_key.pk, b_key.pk]).count() == 2

    assert status_of(api.post("/key/delete", {"keys": [a_key.token]}, as_alice), 200)
    assert not VirtualKey.objects.filter(pk=a_key.pk).exists()


def test_team_admin_cannot_move_a_key_into_another_team(api, as_alice, a_key, other_team):
    error = status_of(api.post("/key/update", {"key": a_key.token, "team_id": "team-b"}, as_alice), 403)["error"]

    assert error["param"] == "team_id"


# --- a plain member --------------------------------------------------------------------------


def test_member_lists_only_their_own_keys(api, as_bob, a_key, a_service, b_key, make_key, alice, team):
    make_key(team=team, user=alice, key_alias="a-alice")

    body = status_of(api.get("/key/list", as_bob, return_full_object="true"), 200)

    assert {k["key_alias"] for k in body["keys"]} == {"a-bob", None}  # None: the key bob calls with
    assert {k["user_id"] for k in body["keys"]} == {"bob"}
    assert status_of(api.get("/key/list", as_bob, user_id="alice"), 200)["keys"] == []


def test_member_reads_their_own_and_their_teams_keys_but_not_another_teams(api, as_bob, a_key, a_service, b_key):
    assert status_of(api.get("/key/info", as_bob, key=a_key.token), 200)
    assert status_of(api.get("/key/info", as_bob, key=a_service[0].token), 200)  # as LiteLLM: team members read

    assert status_of(api.get("/key/info", as_bob, key=b_key.token), 404)


def test_member_gets_403_creating_team_keys(api, as_bob, team):
    error = status_of(api.post("/key/generate", {"team_id": "team-a"}, as_bob), 403)["error"]

    assert error["param"] == "team_id"


def test_member_creates_team_keys_when_the_team_allows_it(api, as_bob, team):
    team.team_member_permissions = ["/key/generate"]
    team.save()

    body = status_of(api.post("/key/generate", {"team_id": "team-a"}, as_bob), 200)

    assert (body["team_id"], body["user_id"]) == ("team-a", "bob")


def test_member_creates_personal_keys_for_themselves(api, as_bob):
    body = status_of(api.post("/key/generate", {"key_alias": "mine"}, as_bob), 200)

    assert (body["team_id"], body["user_id"], body["created_by"]) == (None, "bob", "bob")
    assert status_of(api.post("/key/generate", {"user_id": "alice"}, as_bob), 403)["error"]["param"] == "user_id"


@pytest.mark.parametrize("field", [{"permissions": {"pii": False}}, {"allowed_routes": ["/key/generate"]}])
def test_only_admins_set_permissions_and_routes(api, as_bob, field):
    error = status_of(api.post("/key/generate", field, as_bob), 403)["error"]

    assert error["param"] == next(iter(field))


def test_member_updates_a_personal_key_they_made_but_not_its_budget(api, as_bob):
    made = status_of(api.post("/key/generate", {"max_budget": 1}, as_bob), 200)

    assert status_of(api.post("/key/update", {"key": made["token"], "key_alias": "renamed"}, as_bob), 200)
    error = status_of(api.post("/key/update", {"key": made["token"], "max_budget": 100}, as_bob), 403)["error"]

    assert error["param"] == "max_budget"
    key = VirtualKey.objects.get(token=made["token"])
    assert (key.key_alias, key.max_budget) == ("renamed", Decimal("1"))


@pytest.mark.parametrize(
    "change", [{"blocked": False}, {"budget_duration": "1s"}, {"soft_budget": 50}, {"max_budget": None}]
)
def test_an_owner_cannot_lift_the_limits_of_their_key_through_update(api, auth, as_bob, change):
    made = status_of(api.post("/key/generate", {"max_budget": 1, "budget_duration": "30d"}, as_bob), 200)
    api.post("/key/block", {"key": made["token"]}, auth)

    error = status_of(api.post("/key/update", {"key": made["token"], **change}, as_bob), 403)["error"]

    assert error["param"] == next(iter(change))
    key = VirtualKey.objects.get(token=made["token"])
    assert (key.blocked, key.budget_duration, key.max_budget) == (True, "30d", Decimal("1"))


def test_member_cannot_change_a_personal_key_an_admin_made_for_them(api, as_bob, make_key, bob):
    key = make_key(user=bob, created_by="default_user_id")[0]

    assert status_of(api.post("/key/update", {"key": key.token, "key_alias": "mine"}, as_bob), 403)
    assert status_of(api.post("/key/regenerate", {"key": key.token}, as_bob), 200)  # as LiteLLM: owners rotate


def test_member_updates_their_team_key_only_when_the_team_allows_it(api, as_bob, a_key, team):
    status_of(api.post("/key/update", {"key": a_key.token, "key_alias": "x"}, as_bob), 403)

    team.team_member_permissions = ["/key/update"]
    team.save()

    assert status_of(api.post("/key/update", {"key": a_key.token, "key_alias": "x"}, as_bob), 200)


def test_member_may_not_block_even_their_own_key(api, as_bob, a_key):
    assert status_of(api.post("/key/block", {"key": a_key.token}, as_bob), 403)["error"]["param"] == "key"
    assert VirtualKey.objects.get(pk=a_key.pk).blocked is False


def test_member_deletes_and_regenerates_their_own_key(api, as_bob, a_key, make_key, bob):
    own = make_key(user=bob)[0]

    assert status_of(api.post("/key/regenerate", {"key": a_key.token}, as_bob), 200)
    assert status_of(api.post("/key/delete", {"keys": [own.token]}, as_bob), 200)


def test_member_deletes_nothing_when_one_key_is_a_teammates(api, as_bob, a_key, a_service):
    status_of(api.post("/key/delete", {"keys": [a_key.token, a_service[0].token]}, as_bob), 403)

    assert VirtualKey.objects.filter(pk__in=[a_key.pk, a_service[0].pk]).count() == 2


# --- a key without a user --------------------------------------------------------------------


def test_key_without_a_user_reads_itself_only(api, a_service, a_key):
    _, secret = a_service

    assert status_of(api.get("/key/info", bearer(secret)), 200)["info"]["key_alias"] == "a-service"
    assert status_of(api.get("/key/info", bearer(secret), key=secret), 200)
    assert status_of(api.get("/key/info", bearer(secret), key=a_key.token), 404)
    assert status_of(api.get("/key/list", bearer(secret)), 403)


@pytest.mark.parametrize(
    ("path", "body"),
    [("/key/generate", {}), ("/key/generate", {"team_id": "team-a"}), ("/key/block", {"key": "SELF"})],
)
def test_key_without_a_user_manages_nothing(api, a_service, path, body):
    key, secret = a_service
    body = {name: key.token if value == "SELF" else value for name, value in body.items()}

    status_of(api.post(path, body, bearer(secret)), 403)


# --- proxy admins and viewers ----------------------------------------------------------------


def test_proxy_admin_users_key_does_everything(api, make_user, make_key, a_key, b_key):
    admin = make_user("root", user_role=InternalUser.Role.PROXY_ADMIN)
    as_admin = bearer(make_key(user=admin)[1])

    assert status_of(api.post("/key/generate", {"team_id": "team-b", "user_id": "carol"}, as_admin), 200)
    assert status_of(api.get("/key/list", as_admin), 200)["total_count"] == 4
    assert status_of(api.post("/key/block", {"key": b_key.token}, as_admin), 200)
    assert status_of(api.post("/key/update", {"key": a_key.token, "max_budget": 9}, as_admin), 200)
    assert status_of(api.post("/key/regenerate", {"key": a_key.token}, as_admin), 200)
    assert status_of(api.post("/key/delete", {"key_aliases": ["b-carol"]}, as_admin), 200)


def test_proxy_admin_viewer_reads_every_key_and_changes_none(api, make_user, make_key, a_key, b_key):
    viewer = make_user("auditor", user_role=InternalUser.Role.PROXY_ADMIN_VIEWER)
    as_viewer = bearer(make_key(user=viewer)[1])

    assert status_of(api.get("/key/list", as_viewer), 200)["total_count"] == 3
    assert status_of(api.get("/key/info", as_viewer, key=b_key.token), 200)
    status_of(api.post("/key/generate", {}, as_viewer), 403)
    status_of(api.post("/key/block", {"key": b_key.token}, as_viewer), 403)
    status_of(api.post("/key/delete", {"keys": [b_key.token]}, as_viewer), 403)
    assert VirtualKey.objects.filter(pk=b_key.pk, blocked=False).exists()


def test_a_non_admin_cannot_hand_out_more_budget_than_their_own_key_has(api, make_key, alice):
    as_capped = bearer(make_key(user=alice, max_budget=Decimal("2"))[1])

    error = status_of(api.post("/key/generate", {"team_id": "team-a", "max_budget": 3}, as_capped), 400)["error"]

    assert error["param"] == "max_budget"

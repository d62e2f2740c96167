"""/team/* rights: a team admin, a plain member and a team key each see and change only their team;
and what a team's state does to its keys on the LLM API."""

import pytest

from tenants.models import InternalUser, Team, TeamMembership
from tests.tenants.conftest import bearer, chat, error_of

pytestmark = pytest.mark.django_db


# --- who may do what: two teams -------------------------------------------------------------------------


def test_team_admin_manages_members_of_their_own_team(api, team, alice_key, bob):
    added = api.post(
        "/team/member_add", {"team_id": "team-a", "member": {"role": "user", "user_id": "dave"}}, alice_key
    )
    removed = api.post("/team/member_delete", {"team_id": "team-a", "user_id": "bob"}, alice_key)

    assert added.status_code == 200, added.content
    assert removed.status_code == 200, removed.content
    assert sorted(TeamMembership.objects.filter(team=team).values_list("user__user_id", flat=True)) == [
        "alice",
        "dave",
    ]


def test_team_admin_sees_another_team_as_missing(api, auth, other_team, alice_key, carol):
    missing = error_of(api.get("/team/info", auth, team_id="nope"), 404)

    info = error_of(api.get("/team/info", alice_key, team_id="team-b"), 404)
    add = error_of(
        api.post("/team/member_add", {"team_id": "team-b", "member": {"role": "user", "user_id": "alice"}}, alice_key),
        404,
    )
    remove = error_of(api.post("/team/member_delete", {"team_id": "team-b", "user_id": "carol"}, alice_key), 404)
    update = api.post("/team/update", {"team_id": "team-b", "blocked": True}, alice_key)

    assert info["message"] == missing["message"].replace("nope", "team-b")
    assert add["message"] == remove["message"] == info["message"]
    assert update.status_code == 403
    assert list(TeamMembership.objects.filter(team=other_team).values_list("user__user_id", flat=True)) == ["carol"]
    assert not Team.objects.get(team_id="team-b").blocked


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/team/new", {"team_alias": "mine"}),
        ("/team/update", {"team_id": "team-a", "max_budget": 1000}),
        ("/team/delete", {"team_ids": ["team-a"]}),
        ("/user/new", {"user_id": "new"}),
        ("/user/update", {"user_id": "bob", "max_budget": 1000}),
        ("/user/delete", {"user_ids": ["bob"]}),
    ],
)
def test_team_admin_may_not_use_admin_routes(api, team, alice_key, bob, path, body):
    error = error_of(api.post(path, body, alice_key), 403)

    assert error["type"] == "permission_error"
    assert Team.objects.get(team_id="team-a").max_budget is None
    assert Team.objects.count() == 1 and InternalUser.objects.filter(user_id="bob").exists()


def test_plain_member_reads_their_team_only(api, team, other_team, bob_key):
    assert api.get("/team/info", bob_key, team_id="team-a").status_code == 200
    assert error_of(api.get("/team/info", bob_key, team_id="team-b"), 404)["param"] == "team_id"
    assert [t["team_id"] for t in api.get("/team/list", bob_key).json()] == ["team-a"]
    assert [t["team_id"] for t in api.get("/team/list", bob_key, user_id="bob").json()] == ["team-a"]
    error_of(api.get("/team/list", bob_key, user_id="alice"), 403)


def test_plain_member_may_not_manage_members(api, team, alice, bob_key):
    error_of(
        api.post("/team/member_add", {"team_id": "team-a", "member": {"role": "admin", "user_id": "bob"}}, bob_key), 403
    )
    error_of(api.post("/team/member_delete", {"team_id": "team-a", "user_id": "alice"}, bob_key), 403)

    assert TeamMembership.objects.get(user__user_id="bob").role == "user"
    assert TeamMembership.objects.filter(user=alice).exists()


def test_a_team_key_reads_its_own_team_only(api, team, other_team, make_key):
    _, secret = make_key(team=team)

    assert api.get("/team/info", bearer(secret), team_id="team-a").status_code == 200
    error_of(api.get("/team/info", bearer(secret), team_id="team-b"), 404)
    error_of(
        api.post(
            "/team/member_add", {"team_id": "team-a", "member": {"role": "admin", "user_id": "x"}}, bearer(secret)
        ),
        403,
    )


def test_admin_of_another_team_is_not_admin_here(api, team, other_team, carol, make_key, make_user):
    TeamMembership.objects.create(team=team, user=carol, role="user")
    _, secret = make_key(user=carol)

    error_of(api.post("/team/member_delete", {"team_id": "team-a", "user_id": "carol"}, bearer(secret)), 403)
    assert api.post("/team/member_delete", {"team_id": "team-b", "user_id": "carol"}, bearer(secret)).status_code == 200


def test_no_key_or_an_unknown_key_is_401(api, team):
    assert error_of(api.get("/team/info", {}, team_id="team-a"), 401)["type"] == "authentication_error"
    error_of(api.post("/team/new", {}, bearer("sk-not-a-key")), 401)


# --- the effect on the LLM API ---------------------------------------------------------------------------


def test_blocking_a_team_refuses_its_keys(api, client, auth, team, other_team, make_key, small):
    _, secret = make_key(team=team)
    _, other = make_key(team=other_team)
    assert chat(client, bearer(secret)).status_code == 200

    assert api.post("/team/update", {"team_id": "team-a", "blocked": True}, auth).status_code == 200

    assert error_of(chat(client, bearer(secret)), 401)["code"] == "team_blocked"
    assert chat(client, bearer(other)).status_code == 200
    assert api.post("/team/update", {"team_id": "team-a", "blocked": False}, auth).status_code == 200
    assert chat(client, bearer(secret)).status_code == 200


def test_team_models_limit_what_its_keys_may_call(api, client, auth, team, make_key, small, deployment_for):
    deployment_for(None, alias="large", model="mistral/y", mock_response="hi")
    _, secret = make_key(team=team)
    assert chat(client, bearer(secret), model="large").status_code == 200

    assert api.post("/team/update", {"team_id": "team-a", "models": ["small"]}, auth).status_code == 200

    error = error_of(chat(client, bearer(secret), model="large"), 403)
    assert "Allowed: small" in error["message"]
    assert chat(client, bearer(secret), model="small").status_code == 200


def test_deleting_a_team_refuses_its_keys(api, client, auth, team, make_key, small):
    _, secret = make_key(team=team)
    assert chat(client, bearer(secret)).status_code == 200

    assert api.post("/team/delete", {"team_ids": ["team-a"]}, auth).status_code == 200

    assert error_of(chat(client, bearer(secret)), 401)["type"] == "authentication_error"

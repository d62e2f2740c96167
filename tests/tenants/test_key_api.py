"""/key/* with the master key: LiteLLM's shapes, Tollgate's statuses, and keys never echoed.

Who may do what is in test_key_permissions.py; what a key change does to the LLM API in
test_key_llm_api.py.
"""

import hashlib
import logging
import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tenants import durations, keys
from tenants.auth import MASTER_USER_ID
from tenants.models import VirtualKey
from tests.tenants.conftest import bearer, error_of

pytestmark = pytest.mark.django_db


def custom_key() -> str:
    """A fresh custom key: key records are cached per process, so tests must not share one."""
    return "sk-custom-" + secrets.token_hex(8)


# --- /key/generate ---------------------------------------------------------------------------


def test_generate_returns_the_key_once_with_litellms_fields(api, auth, team, make_user):
    make_user("bob", team=team)
    before = timezone.now()

    r = api.post(
        "/key/generate",
        {
            "key_alias": "ci",
            "duration": "1h",
            "models": ["small"],
            "aliases": {"gpt-4": "small"},
            "max_budget": 12.5,
            "soft_budget": 10,
            "budget_duration": "1d",
            "team_id": "team-a",
            "user_id": "bob",
            "metadata": {"app": "ci"},
            "tags": ["nightly"],
            "rpm_limit": 60,
            "tpm_limit": 10000,
            "max_parallel_requests": 2,
            "permissions": {"pii": False},
            "allowed_routes": ["/chat/completions"],
        },
        auth,
    )

    assert r.status_code == 200, r.content
    assert r["Cache-Control"] == "no-store"
    body = r.json()
    secret = body["key"]
    assert secret.startswith("sk-") and len(secret) >= 35
    assert body["token"] == body["token_id"] == hashlib.sha256(secret.encode()).hexdigest()
    assert body["key_name"] == f"sk-...{secret[-4:]}"
    assert body["key_alias"] == "ci"
    assert body["models"] == ["small"]
    assert body["aliases"] == {"gpt-4": "small"}
    assert body["max_budget"] == 12.5
    assert body["soft_budget"] == 10
    assert body["budget_duration"] == "1d"
    assert (body["team_id"], body["user_id"]) == ("team-a", "bob")
    assert body["metadata"] == {"app": "ci", "tags": ["nightly"]}
    assert (body["rpm_limit"], body["tpm_limit"], body["max_parallel_requests"]) == (60, 10000, 2)
    assert body["permissions"] == {"pii": False}
    assert body["allowed_routes"] == ["/chat/completions"]
    assert body["created_by"] == body["updated_by"] == MASTER_USER_ID
    assert body["duration"] is None
    assert body["blocked"] is False
    assert body["spend"] == 0

    stored = VirtualKey.objects.get(token=body["token"])
    assert before + timedelta(hours=1) <= stored.expires <= timezone.now() + timedelta(hours=1)
    assert stored.budget_reset_at == durations.next_reset("1d", stored.created_at)
    assert stored.allowed_models == ["small"]
    assert stored.max_budget == Decimal("12.5")
    assert secret not in str(VirtualKey.objects.filter(pk=stored.pk).values().first())


def test_generate_with_nothing_makes_a_key_that_never_expires(generate_key):
    body = generate_key()

    assert body["expires"] is None
    assert body["models"] == [] and body["team_id"] is None and body["user_id"] is None
    assert body["max_budget"] is None and body["budget_reset_at"] is None


def test_generate_takes_a_custom_key(generate_key):
    chosen = custom_key()

    body = generate_key(key=chosen)

    assert body["key"] == chosen
    assert body["token"] == keys.digest(chosen)


def test_generate_reads_empty_budget_and_team_as_null_like_litellm(generate_key):
    body = generate_key(max_budget="", team_id="")

    assert body["max_budget"] is None and body["team_id"] is None


def test_generate_drops_all_team_models_which_means_the_teams_models(generate_key, team):
    body = generate_key(team_id="team-a", models=["all-team-models"])

    assert body["models"] == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_budget": -1}, "max_budget"),
        ({"soft_budget": -0.5}, "soft_budget"),
        ({"duration": "3x"}, "duration"),
        ({"budget_duration": "soon"}, "budget_duration"),
        ({"models": "small"}, "models"),
        ({"aliases": ["gpt-4"]}, "aliases"),
        ({"metadata": "x"}, "metadata"),
        ({"rpm_limit": -5}, "rpm_limit"),
        ({"team_id": "no-such-team"}, "team_id"),
        ({"user_id": "nobody"}, "user_id"),
        ({"key": "my-own-key-0123456789"}, "key"),
        ({"key": "sk-short"}, "key"),
    ],
)
def test_generate_refuses_bad_input_naming_the_field(api, auth, body, param):
    error = error_of(api.post("/key/generate", body, auth), 400)

    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert not VirtualKey.objects.exists()


def test_a_refused_custom_key_is_not_repeated_in_the_error(api, auth):
    r = api.post("/key/generate", {"key": "secret-value-0123456789"}, auth)

    assert error_of(r, 400)["param"] == "key"
    assert b"secret-value-0123456789" not in r.content


def test_generate_refuses_a_key_alias_already_taken(api, auth, generate_key):
    generate_key(key_alias="ci")

    error = error_of(api.post("/key/generate", {"key_alias": "ci"}, auth), 400)

    assert error["param"] == "key_alias"
    assert VirtualKey.objects.count() == 1


def test_generate_refuses_a_custom_key_already_in_use(api, auth, generate_key):
    chosen = custom_key()
    generate_key(key=chosen)

    error = error_of(api.post("/key/generate", {"key": chosen}, auth), 400)

    assert error["param"] == "key"


def test_generate_refuses_a_user_outside_the_team(api, auth, team, other_team, make_user):
    make_user("carol", team=other_team)

    error = error_of(api.post("/key/generate", {"team_id": "team-a", "user_id": "carol"}, auth), 400)

    assert error["param"] == "user_id"
    assert "not a member of team team-a" in error["message"]


def test_generate_keeps_team_keys_within_the_teams_models_and_budget(api, auth, team):
    team.allowed_models = ["small"]
    team.max_budget = Decimal("10")
    team.save()

    models = error_of(api.post("/key/generate", {"team_id": "team-a", "models": ["small", "big"]}, auth), 400)
    budget = error_of(api.post("/key/generate", {"team_id": "team-a", "max_budget": 10.01}, auth), 400)

    assert models["param"] == "models" and "big" in models["message"] and "small" in models["message"]
    assert budget["param"] == "max_budget" and "10" in budget["message"]
    fits = api.post("/key/generate", {"team_id": "team-a", "models": ["small"], "max_budget": 10}, auth)
    assert fits.status_code == 200


def test_generate_keeps_personal_keys_within_their_users_models(api, auth, make_user):
    make_user("bob", allowed_models=["small"])

    error = error_of(api.post("/key/generate", {"user_id": "bob", "models": ["big"]}, auth), 400)

    assert error["param"] == "models" and "user bob" in error["message"]


def test_management_routes_need_a_key(api):
    error = error_of(api.post("/key/generate", {}, {}), 401)

    assert error["type"] == "authentication_error"


def test_management_routes_take_json_only(client, auth):
    r = client.post("/key/update", {"key": "x"}, **auth)  # multipart form

    assert r.status_code == 415


# --- /key/info, /key/list --------------------------------------------------------------------


def test_info_takes_the_key_or_its_digest_and_leaves_the_digest_out_of_info(api, auth, generate_key):
    made = generate_key(key_alias="ci", models=["small"])

    by_key = api.get("/key/info", auth, key=made["key"])
    by_digest = api.get("/key/info", auth, key=made["token"])

    assert by_key.status_code == by_digest.status_code == 200
    assert by_key.json() == by_digest.json()
    body = by_key.json()
    assert body["key"] == made["token"]  # LiteLLM echoes what was sent; a key is never echoed
    assert "token" not in body["info"]
    assert body["info"]["key_alias"] == "ci" and body["info"]["models"] == ["small"]
    assert body["info"]["key_name"] == made["key_name"]
    assert body["info"]["status"] == "active"
    assert made["key"] not in by_key.content.decode()


def test_info_without_a_key_describes_the_calling_key(api, make_key, team):
    key, secret = make_key(team=team, key_alias="service")

    body = api.get("/key/info", bearer(secret)).json()

    assert body["key"] == key.token and body["info"]["key_alias"] == "service"


def test_info_without_a_key_for_the_master_key_asks_for_one(api, auth):
    assert error_of(api.get("/key/info", auth), 400)["param"] == "key"


def test_info_of_an_unknown_key_is_404(api, auth):
    error = error_of(api.get("/key/info", auth, key="sk-unknown-0123456789"), 404)

    assert error["param"] == "key" and error["code"] == "key_not_found"


def test_list_pages_through_digests(api, auth, make_key, team, other_team):
    made = [make_key(team=team)[0] for _ in range(3)] + [make_key(team=other_team)[0] for _ in range(2)]

    first = api.get("/key/list", auth, page=1, size=2).json()
    third = api.get("/key/list", auth, page=3, size=2).json()

    assert (first["total_count"], first["current_page"], first["total_pages"]) == (5, 1, 3)
    assert first["keys"] == [made[4].token, made[3].token]  # newest first
    assert third["keys"] == [made[0].token]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"team_id": "team-a"}, ["a1", "a2"]),
        ({"user_id": "bob"}, ["a2"]),
        ({"key_alias": "b1"}, ["b1"]),
        ({"team_id": "team-b", "user_id": "bob"}, []),
    ],
)
def test_list_filters(api, auth, make_key, make_user, team, other_team, query, expected):
    bob = make_user("bob", team=team)
    make_key(team=team, key_alias="a1")
    make_key(team=team, user=bob, key_alias="a2")
    make_key(team=other_team, key_alias="b1")

    body = api.get("/key/list", auth, return_full_object="true", sort_by="key_alias", sort_order="asc", **query).json()

    assert [k["key_alias"] for k in body["keys"]] == expected
    assert body["total_count"] == len(expected)


def test_list_filters_by_key_hash_given_as_key_or_digest(api, auth, make_key, team):
    key, secret = make_key(team=team)
    make_key(team=team)

    assert api.get("/key/list", auth, key_hash=secret).json()["keys"] == [key.token]
    assert api.get("/key/list", auth, key_hash=key.token).json()["keys"] == [key.token]


def test_list_full_objects_carry_the_digest_and_cost_few_queries(
    api, auth, make_key, make_user, team, django_assert_max_num_queries
):
    bob = make_user("bob", team=team)
    for _ in range(20):
        make_key(team=team, user=bob)

    with django_assert_max_num_queries(6):
        body = api.get("/key/list", auth, return_full_object="true", size=100).json()

    assert len(body["keys"]) == 20
    assert all(k["token"] and k["team_id"] == "team-a" and k["user_id"] == "bob" for k in body["keys"])


@pytest.mark.parametrize(
    ("query", "param"), [({"size": 101}, "size"), ({"page": 0}, "page"), ({"sort_by": "secret"}, "sort_by")]
)
def test_list_refuses_bad_paging(api, auth, query, param):
    assert error_of(api.get("/key/list", auth, **query), 400)["param"] == param


def test_changes_are_logged_by_hint_only(api, auth, generate_key, caplog):
    with caplog.at_level(logging.INFO, logger="tenants.keymanagement"):
        made = generate_key(team_id=None)
        api.post("/key/block", {"key": made["key"]}, auth)

    assert f"key {made['key_name']} generated by {MASTER_USER_ID}" in caplog.text
    assert f"key {made['key_name']} blocked by {MASTER_USER_ID}" in caplog.text
    assert made["key"] not in caplog.text

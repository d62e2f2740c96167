"""/key/update, /key/delete, /key/block, /key/unblock, /key/regenerate with the master key."""

import secrets
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tenants import durations, keys
from tenants.auth import MASTER_USER_ID
from tenants.models import VirtualKey
from tests.tenants.conftest import error_of

pytestmark = pytest.mark.django_db


def custom_key() -> str:
    """A fresh custom key: key records are cached per process, so tests must not share one."""
    return "sk-custom-" + secrets.token_hex(8)


# --- /key/update -----------------------------------------------------------------------------


def test_update_changes_only_the_fields_sent(api, auth, generate_key):
    made = generate_key(key_alias="ci", models=["small"], max_budget=5, rpm_limit=10, metadata={"app": "ci"})

    r = api.post("/key/update", {"key": made["key"], "models": ["big"], "max_budget": 7}, auth)

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["key"] == made["token"] and made["key"] not in r.content.decode()
    assert body["models"] == ["big"] and body["max_budget"] == 7
    assert body["key_alias"] == "ci" and body["rpm_limit"] == 10 and body["metadata"] == {"app": "ci"}
    assert body["updated_by"] == MASTER_USER_ID


def test_update_finds_the_key_by_alias_when_no_key_is_given(api, auth, generate_key):
    made = generate_key(key_alias="ci")

    body = api.post("/key/update", {"key_alias": "ci", "rpm_limit": 3}, auth).json()

    assert body["token"] == made["token"] and body["rpm_limit"] == 3


def test_update_duration_restarts_the_expiry_and_null_or_minus_one_clears_it(api, auth, generate_key):
    made = generate_key(duration="1h")
    key = VirtualKey.objects.get(token=made["token"])

    before = timezone.now()
    later = api.post("/key/update", {"key": made["token"], "duration": "2d"}, auth).json()
    key.refresh_from_db()
    assert before + timedelta(days=2) <= key.expires <= timezone.now() + timedelta(days=2)
    assert later["expires"] is not None

    assert api.post("/key/update", {"key": made["token"], "duration": None}, auth).json()["expires"] is None
    api.post("/key/update", {"key": made["token"], "duration": "1h"}, auth)
    assert api.post("/key/update", {"key": made["token"], "duration": "-1"}, auth).json()["expires"] is None
    key.refresh_from_db()
    assert key.expires is None


def test_update_budget_duration_restarts_the_period(api, auth, generate_key):
    made = generate_key()

    api.post("/key/update", {"key": made["token"], "budget_duration": "1h"}, auth)
    key = VirtualKey.objects.get(token=made["token"])
    assert key.budget_duration == "1h" and key.budget_reset_at == durations.next_reset("1h", key.updated_at)

    api.post("/key/update", {"key": made["token"], "budget_duration": None}, auth)
    key.refresh_from_db()
    assert key.budget_duration == "" and key.budget_reset_at is None


def test_update_metadata_replaces_it_and_tags_go_into_it(api, auth, generate_key):
    made = generate_key(metadata={"app": "ci", "owner": "ops"}, tags=["a"])

    only_tags = api.post("/key/update", {"key": made["token"], "tags": ["b"]}, auth).json()
    replaced = api.post("/key/update", {"key": made["token"], "metadata": {"app": "cd"}}, auth).json()

    assert only_tags["metadata"] == {"app": "ci", "owner": "ops", "tags": ["b"]}
    assert replaced["metadata"] == {"app": "cd"}


def test_update_moves_a_key_to_another_team_only_within_its_models(api, auth, generate_key, team, other_team):
    other_team.allowed_models = ["small"]
    other_team.save()
    made = generate_key(team_id="team-a", models=["big"])

    error = error_of(api.post("/key/update", {"key": made["token"], "team_id": "team-b"}, auth), 400)
    moved = api.post("/key/update", {"key": made["token"], "team_id": "team-b", "models": ["small"]}, auth)

    assert error["param"] == "models"
    assert moved.json()["team_id"] == "team-b"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({}, 400, "key"),
        ({"key": "sk-unknown-0123456789"}, 404, "key"),
        ({"key_alias": "nope"}, 404, "key_alias"),
        ({"key": "KEY", "max_budget": -3}, 400, "max_budget"),
        ({"key": "KEY", "team_id": "no-such-team"}, 400, "team_id"),
    ],
)
def test_update_refuses(api, auth, generate_key, body, status, param):
    made = generate_key(max_budget=1)
    body = {name: made["token"] if value == "KEY" else value for name, value in body.items()}

    assert error_of(api.post("/key/update", body, auth), status)["param"] == param
    assert VirtualKey.objects.get().max_budget == 1


# --- /key/delete -----------------------------------------------------------------------------


def test_delete_by_keys_and_digests_answers_the_digests(api, auth, generate_key):
    one, two, kept = generate_key(), generate_key(), generate_key()

    r = api.post("/key/delete", {"keys": [one["key"], two["token"]]}, auth)

    assert r.json() == {"deleted_keys": [one["token"], two["token"]]}
    assert one["key"] not in r.content.decode()
    assert list(VirtualKey.objects.values_list("token", flat=True)) == [kept["token"]]


def test_delete_by_aliases_answers_the_aliases(api, auth, generate_key):
    generate_key(key_alias="one")
    generate_key(key_alias="two")

    r = api.post("/key/delete", {"key_aliases": ["one"]}, auth)

    assert r.json() == {"deleted_keys": ["one"]}
    assert list(VirtualKey.objects.values_list("key_alias", flat=True)) == ["two"]


def test_delete_with_one_unknown_key_deletes_nothing(api, auth, generate_key):
    made = generate_key()

    error = error_of(api.post("/key/delete", {"keys": [made["token"], "sk-unknown-0123456789"]}, auth), 404)

    assert error["param"] == "keys"
    assert VirtualKey.objects.count() == 1


def test_delete_needs_keys_or_aliases(api, auth):
    assert error_of(api.post("/key/delete", {"keys": []}, auth), 400)["param"] == "keys"


# --- /key/block, /key/unblock ----------------------------------------------------------------


def test_block_and_unblock_answer_the_whole_row(api, auth, generate_key):
    made = generate_key(key_alias="ci")

    blocked = api.post("/key/block", {"key": made["key"]}, auth)
    unblocked = api.post("/key/unblock", {"key": made["token"]}, auth)

    assert blocked.json()["blocked"] is True and blocked.json()["status"] == "revoked"
    assert blocked.json()["token"] == made["token"] and blocked.json()["key_alias"] == "ci"
    assert made["key"] not in blocked.content.decode()
    assert unblocked.json()["blocked"] is False
    assert VirtualKey.objects.get().blocked is False


def test_block_of_an_unknown_key_is_404(api, auth):
    assert error_of(api.post("/key/block", {"key": "sk-unknown-0123456789"}, auth), 404)["param"] == "key"


def test_block_needs_a_key(api, auth):
    assert error_of(api.post("/key/block", {}, auth), 400)["param"] == "key"


# --- /key/regenerate -------------------------------------------------------------------------


def test_regenerate_gives_a_new_key_and_keeps_the_rest(api, auth, generate_key):
    made = generate_key(key_alias="ci", models=["small"], max_budget=5)
    VirtualKey.objects.filter(token=made["token"]).update(spend=Decimal("1.25"))

    r = api.post("/key/regenerate", {"key": made["key"]}, auth)

    assert r.status_code == 200, r.content
    assert r["Cache-Control"] == "no-store"
    body = r.json()
    assert body["key"] != made["key"] and body["key"].startswith("sk-")
    assert body["token"] == body["token_id"] == keys.digest(body["key"]) != made["token"]
    assert body["key_name"] == f"sk-...{body['key'][-4:]}"
    assert (body["key_alias"], body["models"], body["max_budget"], body["spend"]) == ("ci", ["small"], 5, 1.25)
    assert VirtualKey.objects.get().token == body["token"]


def test_regenerate_by_path_takes_the_key_or_its_digest(api, auth, generate_key):
    by_key = generate_key()
    by_digest = generate_key()

    first = api.post(f"/key/{by_key['key']}/regenerate", {}, auth)
    second = api.post(f"/key/{by_digest['token']}/regenerate", {}, auth)

    assert first.status_code == second.status_code == 200
    assert VirtualKey.objects.filter(token__in=[by_key["token"], by_digest["token"]]).count() == 0


def test_regenerate_body_key_wins_over_the_path(api, auth, generate_key):
    in_path, in_body = generate_key(), generate_key()

    api.post(f"/key/{in_path['token']}/regenerate", {"key": in_body["token"]}, auth)

    assert VirtualKey.objects.filter(token=in_path["token"]).exists()
    assert not VirtualKey.objects.filter(token=in_body["token"]).exists()


def test_regenerate_takes_a_new_custom_key_and_update_fields(api, auth, generate_key):
    made = generate_key(rpm_limit=1)
    chosen = custom_key()

    body = api.post("/key/regenerate", {"key": made["token"], "new_key": chosen, "rpm_limit": 9}, auth).json()

    assert body["key"] == chosen and body["rpm_limit"] == 9


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "key"),
        ({"key": "KEY", "new_key": "plain-0123456789abc"}, "new_key"),
        ({"key": "KEY", "grace_period": "24h"}, "grace_period"),
        ({"key": "KEY", "max_budget": -1}, "max_budget"),
    ],
)
def test_regenerate_refuses_bad_input(api, auth, generate_key, body, param):
    made = generate_key()
    body = {name: made["token"] if value == "KEY" else value for name, value in body.items()}

    assert error_of(api.post("/key/regenerate", body, auth), 400)["param"] == param
    assert VirtualKey.objects.get().token == made["token"]

"""What /key/* changes do to the LLM API: seen at once, in the same process, through the key cache."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants import generation
from tenants.models import VirtualKey
from tests.conftest import HI
from tests.tenants.conftest import bearer

pytestmark = pytest.mark.django_db
CHAT = "/v1/chat/completions"


@pytest.fixture
def small(deployment_for):
    return deployment_for(None, alias="small", model="mistral/x", mock_response="hi")


@pytest.fixture
def big(deployment_for):
    return deployment_for(None, alias="big", model="mistral/y", mock_response="hello")


def chat(client, secret: str, model: str = "small"):
    return client.post(CHAT, data={"model": model, "messages": HI}, content_type="application/json", **bearer(secret))


def test_a_generated_key_works_at_once(client, generate_key, small):
    made = generate_key()

    r = chat(client, made["key"])

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "hi"


def test_a_blocked_key_gets_401_and_works_again_once_unblocked(client, api, auth, generate_key, small):
    made = generate_key()
    assert chat(client, made["key"]).status_code == 200

    api.post("/key/block", {"key": made["token"]}, auth)
    refused = chat(client, made["key"])
    api.post("/key/unblock", {"key": made["token"]}, auth)

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "key_blocked"
    assert chat(client, made["key"]).status_code == 200


def test_a_deleted_key_gets_401(client, api, auth, generate_key, small):
    made = generate_key()
    assert chat(client, made["key"]).status_code == 200

    api.post("/key/delete", {"keys": [made["key"]]}, auth)

    assert chat(client, made["key"]).status_code == 401


def test_a_regenerated_key_replaces_the_old_one_at_once(client, api, auth, generate_key, small):
    made = generate_key()
    assert chat(client, made["key"]).status_code == 200

    new = api.post("/key/regenerate", {"key": made["key"]}, auth).json()["key"]

    assert chat(client, made["key"]).status_code == 401
    assert chat(client, new).status_code == 200


def test_an_expired_key_gets_401(client, generate_key, small, django_capture_on_commit_callbacks):
    made = generate_key(duration="1h")
    assert chat(client, made["key"]).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        VirtualKey.objects.filter(token=made["token"]).update(expires=timezone.now() - timedelta(seconds=1))
        generation.bump()
    r = chat(client, made["key"])

    assert r.status_code == 401
    assert r.json()["error"]["code"] == "key_expired"


def test_a_key_limited_to_some_models_gets_403_naming_them(client, generate_key, small, big):
    made = generate_key(models=["small"])

    r = chat(client, made["key"], model="big")

    assert r.status_code == 403
    assert "small" in r.json()["error"]["message"]
    assert chat(client, made["key"], model="small").status_code == 200


def test_updating_a_keys_models_takes_effect_at_once(client, api, auth, generate_key, small, big):
    made = generate_key(models=["small"])
    assert chat(client, made["key"], model="big").status_code == 403

    api.post("/key/update", {"key": made["token"], "models": ["small", "big"]}, auth)

    assert chat(client, made["key"], model="big").status_code == 200


def test_a_keys_aliases_route_the_asked_model(client, generate_key, small):
    made = generate_key(aliases={"gpt-4": "small"})

    r = chat(client, made["key"], model="gpt-4")

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "hi"


def test_a_teams_models_limit_its_keys(client, api, auth, team, small, big):
    team.allowed_models = ["small"]
    team.save()
    made = api.post("/key/generate", {"team_id": "team-a"}, auth).json()

    assert chat(client, made["key"], model="small").status_code == 200
    r = chat(client, made["key"], model="big")
    assert r.status_code == 403 and "small" in r.json()["error"]["message"]


def test_a_key_given_to_another_team_follows_that_teams_models(client, api, auth, team, other_team, small, big):
    other_team.allowed_models = ["big"]
    other_team.save()
    made = api.post("/key/generate", {"team_id": "team-a"}, auth).json()
    assert chat(client, made["key"], model="small").status_code == 200

    api.post("/key/update", {"key": made["token"], "team_id": "team-b"}, auth)

    assert chat(client, made["key"], model="small").status_code == 403
    assert chat(client, made["key"], model="big").status_code == 200


def test_a_team_admins_generated_key_works(client, api, make_user, make_key, team, small):
    alice = make_user("alice", team=team, role="admin")
    made = api.post("/key/generate", {"team_id": "team-a"}, bearer(make_key(user=alice)[1])).json()

    assert chat(client, made["key"]).status_code == 200

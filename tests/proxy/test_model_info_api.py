"""/model/info and who may call the /model/* routes (the shapes and writes: test_model_api.py)."""

import pytest

from proxy.models import Deployment
from tenants import keys
from tenants.models import InternalUser
from tests.proxy.test_model_api import LITERAL_KEY, bearer, info, new_model, post

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caches")]


# --- /model/info ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/model/info", "/v1/model/info"])
def test_model_info_lists_config_and_admin_models(client, auth, config_deployment, path):
    added = new_model(client, auth, "added", api_key=LITERAL_KEY)

    r = info(client, auth, path)

    assert r.status_code == 200
    data = {d["model_name"]: d for d in r.json()["data"]}
    assert set(data) == {"added", "from-file"}
    assert data["from-file"]["litellm_params"] == {
        "model": "mistral/mistral-small-latest",
        "api_key": "os.environ/TG_TEST_MISTRAL_KEY",
    }
    assert data["from-file"]["model_info"] == {
        "id": config_deployment.config_id,
        "db_model": False,
        "enabled": True,
    }
    assert data["added"]["model_info"]["id"] == added["model_id"]
    assert data["added"]["model_info"]["db_model"] is True


def test_model_info_by_id_returns_that_one(client, auth, config_deployment):
    new_model(client, auth, "added")

    r = info(client, auth, litellm_model_id=config_deployment.config_id)

    assert r.status_code == 200
    assert [d["model_name"] for d in r.json()["data"]] == ["from-file"]


def test_model_info_by_unknown_id_gets_400(client, auth):
    r = info(client, auth, litellm_model_id="nope")

    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Model id = nope not found on litellm proxy"


def test_model_info_needs_a_key(client):
    assert client.get("/model/info").status_code == 401


# --- who may call ---------------------------------------------------------------------------------


def test_a_key_limited_to_a_model_sees_only_it_and_may_not_manage(client, auth):
    a = new_model(client, auth, "a")
    b = new_model(client, auth, "b")
    _, secret = keys.create(allowed_models=["a"])
    key = bearer(secret)

    listed = info(client, key)
    own = info(client, key, litellm_model_id=a["model_id"])
    other = info(client, key, litellm_model_id=b["model_id"])
    refused = [
        post(client, key, "/model/new", {"model_name": "c", "litellm_params": {"model": "mistral/x"}}),
        post(client, key, "/model/update", {"model_info": {"id": a["model_id"]}, "litellm_params": {"rpm": 1}}),
        post(client, key, "/model/delete", {"id": a["model_id"]}),
    ]

    assert [d["model_name"] for d in listed.json()["data"]] == ["a"]
    assert own.status_code == 200
    assert other.status_code == 400  # another model's id is unknown to this key
    for r in refused:
        assert r.status_code == 403
        assert r.json()["error"]["type"] == "permission_error"
    assert sorted(Deployment.objects.values_list("model_name", flat=True)) == ["a", "b"]
    assert Deployment.objects.get(model_name="a").rpm is None


def test_a_proxy_admin_users_key_may_add_models(client):
    admin = InternalUser.objects.create(user_id="ops", user_role=InternalUser.Role.PROXY_ADMIN)
    _, secret = keys.create(user=admin)

    r = post(client, bearer(secret), "/model/new", {"model_name": "x", "litellm_params": {"model": "mistral/x"}})

    assert r.status_code == 200

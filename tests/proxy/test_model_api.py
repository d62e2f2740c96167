"""The /model/* management routes: add, change, remove and list deployments as LiteLLM does."""

import json
import uuid

import pytest
from django.db import connection

from proxy.models import Deployment
from tests.conftest import HI

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caches")]

LITERAL_KEY = "sk-literal-provider-key-7f3a9c"
AWS_SECRET = "aws-secret-access-key-0123456789abcdefXYZ"
VERTEX_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----vertex-very-secret"


def post(client, headers, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def new_model(client, auth, name="added", **litellm_params):
    litellm_params.setdefault("model", "mistral/mistral-small-latest")
    litellm_params.setdefault("mock_response", "Hello from the API")
    r = post(client, auth, "/model/new", {"model_name": name, "litellm_params": litellm_params})
    assert r.status_code == 200, r.json()
    return r.json()


def chat(client, auth, model):
    return post(client, auth, "/v1/chat/completions", {"model": model, "messages": HI})


def info(client, headers, path="/model/info", **query):
    return client.get(path, query, **headers)


def everything_stored() -> str:
    """Every column of every deployment, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM proxy_deployment")
        return repr(cursor.fetchall())


# --- /model/new -----------------------------------------------------------------------------------


def test_model_new_stores_an_admin_deployment_and_answers_in_litellms_shape(client, auth):
    r = post(
        client,
        auth,
        "/model/new",
        {
            "model_name": "added",
            "litellm_params": {
                "model": "mistral/mistral-small-latest",
                "api_key": LITERAL_KEY,
                "api_base": "https://mistral.example.test/v1",
                "rpm": 10,
                "input_cost_per_token": 0.000002,
                "temperature": 0.2,
            },
            "model_info": {"description": "A small model", "db_model": False},
        },
    )

    assert r.status_code == 200
    body = r.json()
    model_id = body["model_id"]
    assert str(uuid.UUID(model_id)) == model_id
    assert body["model_name"] == "added"
    assert body["litellm_params"] == {
        "model": "mistral/mistral-small-latest",
        "api_base": "https://mistral.example.test/v1",
        "api_key": "sk-...3a9c",
        "rpm": 10,
        "input_cost_per_token": 0.000002,
        "temperature": 0.2,
    }
    assert body["model_info"] == {"description": "A small model", "id": model_id, "db_model": True, "enabled": True}
    assert body["created_at"] and body["updated_at"]
    row = Deployment.objects.get()
    assert (row.source, row.config_id, row.model_name, row.rpm) == (Deployment.Source.ADMIN, model_id, "added", 10)
    assert row.params == {"temperature": 0.2}


def test_model_new_keeps_a_given_id(client, auth):
    r = post(
        client,
        auth,
        "/model/new",
        {"model_name": "added", "litellm_params": {"model": "mistral/x"}, "model_info": {"id": "my-id"}},
    )

    assert r.status_code == 200
    assert r.json()["model_id"] == r.json()["model_info"]["id"] == "my-id"
    assert Deployment.objects.get().config_id == "my-id"


def test_model_new_refuses_an_id_already_used(client, auth, config_deployment):
    body = {"model_name": "added", "litellm_params": {"model": "mistral/x"}, "model_info": {"id": "taken"}}
    assert post(client, auth, "/model/new", body).status_code == 200

    again = post(client, auth, "/model/new", body)
    of_config = post(client, auth, "/model/new", body | {"model_info": {"id": config_deployment.config_id}})

    for r in (again, of_config):
        assert r.status_code == 400
        assert r.json()["error"]["param"] == "model_info.id"
        assert "already used" in r.json()["error"]["message"]
    assert Deployment.objects.count() == 2


def test_a_model_added_is_served_at_once_and_listed(client, auth):
    new_model(client, auth, "added", mock_response="Hello from the API")

    r = chat(client, auth, "added")

    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "Hello from the API"
    assert [m["id"] for m in client.get("/v1/models", **auth).json()["data"]] == ["added"]


def test_a_model_added_with_a_literal_key_calls_the_provider_with_it(client, auth, fake_mistral):
    new_model(client, auth, "real", api_key=fake_mistral.API_KEY, api_base=fake_mistral.url, mock_response=None)
    fake_mistral.reply("Bonjour!")

    r = chat(client, auth, "real")

    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "Bonjour!"
    assert fake_mistral.requests[-1].headers["authorization"] == f"Bearer {fake_mistral.API_KEY}"
    assert fake_mistral.API_KEY not in everything_stored()


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"litellm_params": {"model": "mistral/x"}}, "model_name", "model_name is required"),
        ({"model_name": "x"}, "litellm_params", "litellm_params is required and must be a mapping"),
        ({"model_name": "x", "litellm_params": {}}, "litellm_params.model", "litellm_params.model is required"),
        (
            {"model_name": "x", "litellm_params": {"model": "mistral-small"}},
            "litellm_params.model",
            "litellm_params.model 'mistral-small' needs a provider prefix, e.g. mistral/mistral-small",
        ),
        (
            {"model_name": "x", "litellm_params": {"model": "mistral/x", "rpm": "fast"}},
            "litellm_params.rpm",
            "litellm_params.rpm must be a whole number ≥ 0, got 'fast'",
        ),
        (
            {"model_name": "x", "litellm_params": {"model": "mistral/x", "api_base": "ftp://x"}},
            "litellm_params.api_base",
            "litellm_params.api_base must be an http(s) URL, got 'ftp://x'",
        ),
        (
            {"model_name": "x", "litellm_params": {"model": "mistral/x"}, "model_info": []},
            "model_info",
            "model_info must be a mapping",
        ),
        (
            {"model_name": "x", "litellm_params": {"model": "mistral/x"}, "model_info": {"id": 7}},
            "model_info.id",
            "model_info.id must be a non-empty string",
        ),
    ],
)
def test_model_new_with_a_bad_field_gets_400_naming_it(client, auth, body, param, message):
    r = post(client, auth, "/model/new", body)

    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].startswith(message)
    assert not Deployment.objects.exists()


def test_model_new_reports_a_missing_field_as_missing(client, auth):
    missing = post(client, auth, "/model/new", {"litellm_params": {"model": "mistral/x"}}).json()["error"]
    wrong = post(client, auth, "/model/new", {"model_name": "x", "litellm_params": {"model": "x"}}).json()["error"]

    assert missing["code"] == "missing_required_parameter"
    assert wrong["code"] == "invalid_value"


def test_model_new_body_must_be_a_json_object(client, auth):
    r = post(client, auth, "/model/new", [{"model_name": "x"}])

    assert r.status_code == 400
    assert r.json()["error"]["message"] == "The body must be a JSON object."


# --- secrets --------------------------------------------------------------------------------------


def test_secrets_never_leave_in_any_answer_nor_sit_in_clear_in_the_db(client, auth):
    added = new_model(
        client,
        auth,
        "secretive",
        api_key=LITERAL_KEY,
        aws_access_key_id="os.environ/TG_TEST_AWS_KEY",
        aws_secret_access_key=AWS_SECRET,
        vertex_credentials={"type": "service_account", "private_key": VERTEX_PRIVATE_KEY},
        extra_headers={"Authorization": "Bearer upstream-header-secret-123"},
    )
    updated = post(
        client, auth, "/model/update", {"model_info": {"id": added["model_id"]}, "litellm_params": {"rpm": 5}}
    )
    listed = info(client, auth)
    one = info(client, auth, litellm_model_id=added["model_id"])

    answers = json.dumps(added) + updated.content.decode() + listed.content.decode() + one.content.decode()
    for secret in (LITERAL_KEY, AWS_SECRET, VERTEX_PRIVATE_KEY, "upstream-header-secret-123"):
        assert secret not in answers
    assert "fernet:" not in answers
    stored = everything_stored()
    for secret in (LITERAL_KEY, AWS_SECRET, VERTEX_PRIVATE_KEY):
        assert secret not in stored
    shown = listed.json()["data"][0]["litellm_params"]
    assert shown["api_key"] == f"{LITERAL_KEY[:3]}...{LITERAL_KEY[-4:]}"
    assert shown["aws_access_key_id"] == "os.environ/TG_TEST_AWS_KEY"  # a reference is no secret
    assert shown["aws_secret_access_key"] == f"{AWS_SECRET[:3]}...{AWS_SECRET[-4:]}"
    assert shown["vertex_credentials"].startswith('{"t') and "..." in shown["vertex_credentials"]
    assert shown["extra_headers"] == {"Authorization": "Bea...-123"}


def test_a_short_secret_is_shown_as_stars(client, auth):
    shown = new_model(client, auth, api_key="short-key")["litellm_params"]

    assert shown["api_key"] == "********"


# --- /model/update --------------------------------------------------------------------------------


def test_model_update_changes_what_is_served(client, auth):
    added = new_model(client, auth, "added", mock_response="before", api_key=LITERAL_KEY, rpm=3)
    assert chat(client, auth, "added").json()["choices"][0]["message"]["content"] == "before"

    r = post(
        client,
        auth,
        "/model/update",
        {"model_info": {"id": added["model_id"]}, "litellm_params": {"mock_response": "after"}},
    )

    assert r.status_code == 200
    assert r.json()["litellm_params"]["mock_response"] == "after"
    assert r.json()["litellm_params"]["rpm"] == 3  # merged over the stored params
    assert chat(client, auth, "added").json()["choices"][0]["message"]["content"] == "after"
    row = Deployment.objects.get()
    assert row.api_key.startswith("fernet:") and row.rpm == 3


def test_model_update_also_renames_and_merges_model_info(client, auth):
    r = post(
        client,
        auth,
        "/model/new",
        {
            "model_name": "old-name",
            "litellm_params": {"model": "mistral/x", "mock_response": "hi"},
            "model_info": {"id": "m1", "description": "first", "mode": "chat"},
        },
    )
    assert r.status_code == 200

    r = post(
        client,
        auth,
        "/model/update",
        {"model_name": "new-name", "model_info": {"id": "m1", "description": "second", "mode": None}},
    )

    assert r.status_code == 200
    assert r.json()["model_name"] == "new-name"
    assert r.json()["model_info"] == {
        "id": "m1",
        "description": "second",
        "mode": "chat",
        "db_model": True,
        "enabled": True,
    }
    assert chat(client, auth, "old-name").status_code == 404
    assert chat(client, auth, "new-name").status_code == 200


def test_model_update_with_the_masked_key_from_model_info_keeps_the_key(client, auth, fake_mistral):
    added = new_model(client, auth, "real", api_key=fake_mistral.API_KEY, api_base=fake_mistral.url, mock_response=None)
    listed = info(client, auth).json()["data"][0]

    r = post(client, auth, "/model/update", listed | {"litellm_params": listed["litellm_params"] | {"rpm": 7}})

    assert r.status_code == 200
    assert chat(client, auth, "real").status_code == 200
    assert fake_mistral.requests[-1].headers["authorization"] == f"Bearer {fake_mistral.API_KEY}"
    assert Deployment.objects.get(config_id=added["model_id"]).rpm == 7


def test_model_update_checks_the_merged_params(client, auth):
    added = new_model(client, auth)

    r = post(client, auth, "/model/update", {"model_info": {"id": added["model_id"]}, "litellm_params": {"rpm": -1}})

    assert r.status_code == 400
    assert r.json()["error"]["param"] == "litellm_params.rpm"
    assert Deployment.objects.get().rpm is None


def test_model_update_of_a_config_file_model_gets_400(client, auth, config_deployment):
    r = post(
        client,
        auth,
        "/model/update",
        {"model_info": {"id": config_deployment.config_id}, "litellm_params": {"rpm": 1}},
    )

    assert r.status_code == 400
    assert "Model in config" in r.json()["error"]["message"]
    assert "edit the config file" in r.json()["error"]["message"]
    assert Deployment.objects.get().rpm is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"litellm_params": {"rpm": 1}}, "model_info.id is required"),
        ({"model_info": {}, "litellm_params": {"rpm": 1}}, "model_info.id is required"),
        ({"model_info": {"id": "nope"}, "litellm_params": {"rpm": 1}}, "model not found"),
    ],
)
def test_model_update_without_a_known_id_gets_400(client, auth, body, message):
    r = post(client, auth, "/model/update", body)

    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model_info.id"
    assert message in r.json()["error"]["message"]


def test_model_update_reaches_a_row_added_in_the_django_admin_by_its_pk(client, auth):
    row = Deployment.objects.create(model_name="by-hand", litellm_model="mistral/x", mock_response="hand")
    listed = info(client, auth).json()["data"][0]
    assert listed["model_info"]["id"] == str(row.pk)

    r = post(client, auth, "/model/update", {"model_info": {"id": str(row.pk)}, "litellm_params": {"rpm": 2}})

    assert r.status_code == 200
    assert r.json()["model_id"] == str(row.pk)
    assert Deployment.objects.get().rpm == 2


# --- /model/delete --------------------------------------------------------------------------------


def test_model_delete_removes_the_model_everywhere(client, auth):
    added = new_model(client, auth, "doomed")

    r = post(client, auth, "/model/delete", {"id": added["model_id"]})

    assert r.status_code == 200
    assert r.json() == {"message": f"Model: {added['model_id']} deleted successfully"}
    assert chat(client, auth, "doomed").status_code == 404
    assert client.get("/v1/models", **auth).json()["data"] == []
    assert info(client, auth).json() == {"data": []}
    assert not Deployment.objects.exists()


def test_model_delete_of_an_unknown_id_gets_400(client, auth):
    r = post(client, auth, "/model/delete", {"id": "nope"})

    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Model with id=nope not found in db"


def test_model_delete_of_a_config_file_model_gets_400_and_keeps_it(client, auth, config_deployment):
    r = post(client, auth, "/model/delete", {"id": config_deployment.config_id})

    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith(f"Model with id={config_deployment.config_id} not found in db")
    assert "config file" in r.json()["error"]["message"]
    assert Deployment.objects.filter(pk=config_deployment.pk).exists()


def test_model_delete_without_id_gets_400(client, auth):
    r = post(client, auth, "/model/delete", {})

    assert r.status_code == 400
    assert r.json()["error"]["param"] == "id"

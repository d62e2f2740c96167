"""Every failure answers OpenAI's envelope `{"error": {message, type, param, code}}` with the right status.

Upstream trouble is provoked on the fake Mistral (fail, hang, cut_stream) or with a closed port;
after each one a normal request must still succeed: a failure never leaves the gateway broken.
"""

import json
import socket

import pytest

from billing.models import UsageRecord
from proxy.models import Deployment
from tests.conftest import HI, MASTER_KEY
from tests.fakes.mistral_schema import error_body

CHAT = "/v1/chat/completions"
OK = {"model": "small", "messages": HI}


def post(client, auth, body, path=CHAT, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", **auth, **headers)


def error_of(response, status: int) -> dict:
    """Assert the status and the envelope's shape; return the error object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert response["x-request-id"]
    return body["error"]


def still_healthy(client, auth, fake) -> None:
    """A plain request right after a failure goes through."""
    fake.reply("still here")
    r = post(client, auth, OK)
    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "still here"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def small(fake_mistral, deployment_for):
    return deployment_for(fake_mistral, alias="small")


# --- keys -----------------------------------------------------------------------------------------


def test_missing_key_gets_401(client, small):
    error = error_of(client.post(CHAT, data=json.dumps(OK), content_type="application/json"), 401)

    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in error["message"]


def test_wrong_key_gets_401_without_echoing_it(client, fake_mistral, small):
    error = error_of(post(client, {"HTTP_AUTHORIZATION": "Bearer sk-wrong-key-1234567890"}, OK), 401)

    assert error["code"] == "invalid_api_key"
    assert "sk-wrong-key-1234567890" not in error["message"]
    assert fake_mistral.requests == []


def test_wrong_scheme_is_refused(client, small):
    error_of(post(client, {"HTTP_AUTHORIZATION": f"Basic {MASTER_KEY}x"}, OK), 401)


@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_AUTHORIZATION": f"Bearer {MASTER_KEY}"},
        {"HTTP_AUTHORIZATION": f"bearer {MASTER_KEY}"},
        {"HTTP_API_KEY": MASTER_KEY},
        {"HTTP_X_API_KEY": MASTER_KEY},
    ],
    ids=["bearer", "bearer-lowercase", "api-key", "x-api-key"],
)
def test_key_is_accepted_from_each_header(client, fake_mistral, small, header):
    assert post(client, header, OK).status_code == 200


def test_models_list_needs_a_key(client, small):
    error_of(client.get("/v1/models"), 401)


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"model": "small", "messages": [', "not json", ""], ids=["cut", "text", "empty"])
def test_malformed_json_gets_400(client, auth, small, raw):
    error = error_of(post(client, auth, raw), 400)

    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("raw", ["[1, 2]", '"hello"', "42", "null"])
def test_body_that_is_not_an_object_gets_400(client, auth, small, raw):
    assert error_of(post(client, auth, raw), 400)["code"] == "invalid_json"


def test_missing_messages_gets_400_naming_it(client, auth, small):
    error = error_of(post(client, auth, {"model": "small"}), 400)

    assert (error["param"], error["code"]) == ("messages", "missing_required_parameter")
    assert error["type"] == "invalid_request_error"


def test_missing_model_gets_400_naming_it(client, auth, small):
    error = error_of(post(client, auth, {"messages": HI}), 400)

    assert (error["param"], error["code"]) == ("model", "missing_required_parameter")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"messages": "Hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": ["Hi"]}, "messages[0]"),
        ({"model": 3}, "model"),
        ({"stream": "yes"}, "stream"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": -0.5}, "temperature"),
        ({"stop": 5}, "stop"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"stream_options": True}, "stream_options"),
        ({"messages": [{"content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "Hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": ["Hi"]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "assistant", "content": "x", "tool_calls": {}}]}, "messages[0].tool_calls"),
    ],
)
def test_wrong_types_get_400_naming_the_param(client, auth, fake_mistral, small, change, param):
    error = error_of(post(client, auth, {**OK, **change}), 400)

    assert error["param"] == param
    assert error["code"] in ("invalid_type", "invalid_value", "missing_required_parameter")
    assert param.split("[")[0] in error["message"]
    assert fake_mistral.requests == []


def test_null_optional_fields_count_as_unset(client, auth, fake_mistral, small):
    r = post(client, auth, {**OK, "stream": None, "max_tokens": None, "temperature": None, "tools": None})

    assert r.status_code == 200


def test_oversized_body_gets_413_and_the_next_request_succeeds(client, auth, fake_mistral, small, settings):
    big = json.dumps({**OK, "messages": [{"role": "user", "content": "x" * (20 * 1024 * 1024)}]})

    error = error_of(post(client, auth, big), 413)

    assert error["code"] == "request_too_large"
    assert str(settings.TOLLGATE_MAX_REQUEST_BYTES) in error["message"]
    assert fake_mistral.requests == []
    still_healthy(client, auth, fake_mistral)


# --- routes ---------------------------------------------------------------------------------------


def test_unknown_model_gets_404(client, auth, fake_mistral, small):
    error = error_of(post(client, auth, {**OK, "model": "gpt-nope"}), 404)

    assert (error["param"], error["code"]) == ("model", "model_not_found")
    assert "gpt-nope" in error["message"]


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/chat/completion", "/nothing/here"])
def test_unknown_url_gets_a_json_404(client, auth, path):
    error = error_of(client.post(path, data="{}", content_type="application/json", **auth), 404)

    assert error["code"] == "unknown_url"
    assert path in error["message"]


def test_get_on_chat_completions_gets_405(client, auth, small):
    r = client.get(CHAT, **auth)

    error = error_of(r, 405)
    assert error["code"] == "method_not_allowed"
    assert "POST" in r["Allow"]


# --- upstream failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 422])
def test_upstream_client_error_keeps_status_and_message(client, auth, fake_mistral, small, status):
    body = (
        error_body(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "frobnicate"],
                    "msg": "Extra inputs are not permitted",
                    "input": 1,
                }
            ]
        )
        if status == 422
        else None
    )
    fake_mistral.fail(status, body)

    error = error_of(post(client, auth, OK), status)

    expected = "frobnicate: Extra inputs are not permitted" if status == 422 else "Invalid request"
    assert expected in error["message"]
    assert error["type"] == "invalid_request_error"
    still_healthy(client, auth, fake_mistral)


def test_mistrals_own_refusal_reaches_the_caller(client, auth, fake_mistral, small):
    ends_with_assistant = [*HI, {"role": "assistant", "content": "Hello"}]

    error = error_of(post(client, auth, {**OK, "messages": ends_with_assistant}), 400)

    assert "Expected last role User or Tool" in error["message"]
    still_healthy(client, auth, fake_mistral)


@pytest.mark.parametrize(
    ("path", "endpoint", "body"),
    [
        ("/v1/embeddings", "embeddings", {"model": "small", "input": "x"}),
        ("/v1/fim/completions", "fim", {"model": "small", "prompt": "def f():"}),
        ("/v1/completions", "chat", {"model": "small", "prompt": "Say hi"}),
    ],
)
def test_upstream_errors_map_the_same_on_every_endpoint(client, auth, fake_mistral, small, path, endpoint, body):
    fake_mistral.fail(429, headers={"Retry-After": "3"}, endpoint=endpoint)

    r = post(client, auth, body, path=path)

    assert error_of(r, 429)["type"] == "rate_limit_error"
    assert r["Retry-After"] == "3"


def test_upstream_429_passes_retry_after_through(client, auth, fake_mistral, small):
    fake_mistral.fail(429, headers={"Retry-After": "7"})

    r = post(client, auth, OK)

    error = error_of(r, 429)
    assert error["type"] == "rate_limit_error"
    assert "Rate limit exceeded" in error["message"]
    assert r["Retry-After"] == "7"
    still_healthy(client, auth, fake_mistral)


def test_upstream_429_without_retry_after_sends_none(client, auth, fake_mistral, small):
    fake_mistral.fail(429)

    r = post(client, auth, OK)

    error_of(r, 429)
    assert not r.has_header("Retry-After")


def test_upstream_401_is_the_deployments_fault_not_the_callers(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", api_key="not-the-fake-key")

    error = error_of(post(client, auth, OK), 502)

    assert error["code"] == "upstream_auth_error"
    assert error["type"] == "api_error"
    assert "not-the-fake-key" not in error["message"]


@pytest.mark.parametrize(("upstream", "status"), [(500, 502), (502, 502), (504, 502), (503, 503)])
def test_upstream_server_errors(client, auth, fake_mistral, small, upstream, status):
    fake_mistral.fail(upstream)

    error = error_of(post(client, auth, OK), status)

    assert error["type"] == "api_error"
    assert "mistral said" in error["message"]
    still_healthy(client, auth, fake_mistral)


def test_upstream_error_without_an_envelope_keeps_its_text(client, auth, fake_mistral, small):
    fake_mistral.fail(500, body="upstream exploded")  # type: ignore[arg-type]  # a bare JSON string

    assert "upstream exploded" in error_of(post(client, auth, OK), 502)["message"]


def test_upstream_error_on_a_stream_is_a_plain_error_response(client, auth, fake_mistral, small):
    fake_mistral.fail(503)

    error = error_of(post(client, auth, {**OK, "stream": True}), 503)

    assert "Service unavailable" in error["message"]
    still_healthy(client, auth, fake_mistral)


def test_upstream_timeout_gets_504(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", timeout=0.5)
    fake_mistral.hang(2)

    error = error_of(post(client, auth, OK), 504)

    assert error["type"] == "timeout_error"
    assert error["code"] == "upstream_timeout"
    still_healthy(client, auth, fake_mistral)


def test_upstream_timeout_before_a_stream_starts_gets_504(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", timeout=0.5)
    fake_mistral.hang(2)

    error_of(post(client, auth, {**OK, "stream": True}), 504)
    still_healthy(client, auth, fake_mistral)


def test_unreachable_provider_gets_502(client, auth, db):
    Deployment.objects.create(
        model_name="small",
        litellm_model="mistral/mistral-small-latest",
        api_base=f"http://127.0.0.1:{closed_port()}/v1",
        api_key="k",
    )

    error = error_of(post(client, auth, OK), 502)

    assert error["code"] == "upstream_unreachable"
    assert "could not be reached" in error["message"]


def test_cut_stream_ends_with_an_error_event_and_no_done(client, auth, fake_mistral, small):
    fake_mistral.cut_stream(1)

    r = post(client, auth, {**OK, "stream": True})

    assert r.status_code == 200
    raw = b"".join(r.streaming_content)
    assert b"[DONE]" not in raw
    blocks = [b.removeprefix(b"data: ") for b in raw.split(b"\n\n") if b]
    assert json.loads(blocks[1])["choices"][0]["delta"]["content"] == "Echo:"
    last = json.loads(blocks[-1])
    assert set(last) == {"error"}
    assert last["error"]["code"] == "upstream_stream_broken"
    assert last["error"]["status"] == 502
    still_healthy(client, auth, fake_mistral)


def test_cut_json_answer_gets_502(client, auth, fake_mistral, small):
    fake_mistral.cut_stream(1)  # a non-streaming request gets half its JSON body

    error_of(post(client, auth, OK), 502)
    still_healthy(client, auth, fake_mistral)


# --- deployments that cannot be called --------------------------------------------------------------


def test_unset_environment_key_gets_500_naming_the_variable(client, auth, fake_mistral, deployment_for, monkeypatch):
    monkeypatch.delenv("TOLLGATE_TEST_UNSET_KEY", raising=False)
    deployment_for(fake_mistral, alias="small", api_key="os.environ/TOLLGATE_TEST_UNSET_KEY")

    error = error_of(post(client, auth, OK), 500)

    assert error["code"] == "provider_misconfigured"
    assert "TOLLGATE_TEST_UNSET_KEY" in error["message"]
    assert fake_mistral.API_KEY not in error["message"]
    assert fake_mistral.requests == []


def test_environment_key_is_read_when_set(client, auth, fake_mistral, deployment_for, monkeypatch):
    monkeypatch.setenv("TOLLGATE_TEST_SET_KEY", fake_mistral.API_KEY)
    deployment_for(fake_mistral, alias="small", api_key="os.environ/TOLLGATE_TEST_SET_KEY")

    assert post(client, auth, OK).status_code == 200


def test_unsupported_provider_says_so(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", model="frobnicator/model-1")

    error = error_of(post(client, auth, OK), 500)

    assert error["code"] == "provider_not_supported"
    assert "frobnicator" in error["message"]
    assert "mistral" in error["message"]  # lists what is supported
    assert fake_mistral.requests == []


def test_unsupported_provider_still_listed_and_others_unaffected(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="odd", model="frobnicator/model-1")
    deployment_for(fake_mistral, alias="small")

    ids = [m["id"] for m in client.get("/v1/models", **auth).json()["data"]]

    assert ids == ["odd", "small"]
    still_healthy(client, auth, fake_mistral)


def test_embeddings_input_of_the_wrong_type_gets_400(client, auth, fake_mistral, small):
    r = client.post(
        "/v1/embeddings", data=json.dumps({"model": "small", "input": 5}), content_type="application/json", **auth
    )

    assert error_of(r, 400)["param"] == "input"


def test_provider_stalling_mid_stream_ends_with_a_timeout_event(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", stream_timeout=0.3)
    fake_mistral.reply_stream(["slow", "er"], delay=1)

    r = post(client, auth, {**OK, "stream": True})

    raw = b"".join(r.streaming_content)
    assert b"[DONE]" not in raw
    last = json.loads(raw.rstrip(b"\n").rsplit(b"\n\n", 1)[-1].removeprefix(b"data: "))
    assert (last["error"]["code"], last["error"]["status"], last["error"]["type"]) == (
        "upstream_timeout",
        504,
        "timeout_error",
    )


def test_a_cut_stream_is_recorded_once_as_failed_with_what_was_relayed(client, auth, fake_mistral, small):
    fake_mistral.cut_stream(1)

    b"".join(post(client, auth, {**OK, "stream": True}).streaming_content)

    [row] = UsageRecord.objects.all()
    assert (row.status, row.stream) == (502, True)
    assert row.error_type
    assert row.tokens_estimated and row.completion_tokens >= 1

"""FIM, text completions, embeddings, model cards and health checks, against the fake Mistral."""

import base64
import json
import struct

import pytest

from tests.fakes.mistral import FIM_TEXT
from tests.fakes.mistral_schema import EMBEDDING_FIELDS, FIM_FIELDS

CODE = {"model": "code", "prompt": "def add(a, b):", "suffix": "\n\nprint(add(1, 2))"}


def post(client, auth, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json", **auth)


def events(response) -> list:
    """The parsed `data:` payloads of an SSE answer, which must end with [DONE]."""
    assert response["Content-Type"] == "text/event-stream"
    raw = b"".join(response.streaming_content).decode()
    assert raw.endswith("data: [DONE]\n\n")
    blocks = raw.split("\n\n")[:-2]
    assert all(b.startswith("data: ") for b in blocks)
    return [json.loads(b.removeprefix("data: ")) for b in blocks]


@pytest.fixture
def codestral(fake_mistral, deployment_for):
    return deployment_for(fake_mistral, alias="code", model="codestral/codestral-latest")


# --- /v1/fim/completions --------------------------------------------------------------------------


def test_fim_answer_is_chat_shaped(client, auth, fake_mistral, codestral):
    r = post(client, auth, "/v1/fim/completions", CODE)

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == FIM_TEXT
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    sent = fake_mistral.last_request
    assert sent.path == "/v1/fim/completions"
    assert sent.json == {"model": "codestral-latest", "prompt": CODE["prompt"], "suffix": CODE["suffix"]}
    assert r["x-tollgate-deployment"] == str(codestral.pk)


def test_fim_stream_is_chat_chunks(client, auth, fake_mistral, codestral):
    r = post(
        client,
        auth,
        "/fim/completions",
        {**CODE, "stream": True, "stream_options": {"include_usage": True}, "user": "u-1"},
    )

    chunks = events(r)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == FIM_TEXT
    sent = fake_mistral.last_request
    assert sent.path == "/v1/fim/completions"
    assert set(sent.json) <= FIM_FIELDS
    assert sent.json["stream"] is True


def test_fim_without_prompt_gets_400(client, auth, fake_mistral, codestral):
    r = post(client, auth, "/v1/fim/completions", {"model": "code", "suffix": "x"})

    assert r.status_code == 400
    assert r.json()["error"]["param"] == "prompt"
    assert fake_mistral.requests == []


# --- /v1/completions ------------------------------------------------------------------------------


def test_text_completion_on_codestral_goes_through_fim(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="code", model="text-completion-codestral/codestral-latest")

    r = post(client, auth, "/v1/completions", {**CODE, "max_tokens": 20, "echo": False, "best_of": 1})

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == FIM_TEXT
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] > 0
    sent = fake_mistral.last_request
    assert sent.path == "/v1/fim/completions"
    assert sent.json == {
        "model": "codestral-latest",
        "prompt": CODE["prompt"],
        "suffix": CODE["suffix"],
        "max_tokens": 20,
    }


def test_text_completion_stream_on_codestral(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="code", model="text-completion-codestral/codestral-latest")

    chunks = events(
        post(client, auth, "/v1/completions", {**CODE, "stream": True, "stream_options": {"include_usage": True}})
    )

    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks[:-1]) == FIM_TEXT
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_text_completion_on_a_chat_model_sends_the_prompt_as_a_user_message(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest")

    r = post(
        client,
        auth,
        "/v1/completions",
        {"model": "small", "prompt": "Say hi", "echo": False, "best_of": 1, "logprobs": None, "seed": 3},
    )

    assert r.status_code == 200, r.content
    assert r.json()["object"] == "text_completion"
    assert r.json()["choices"][0]["text"] == "Echo: Say hi"
    sent = fake_mistral.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {
        "model": "mistral-small-latest",
        "random_seed": 3,
        "messages": [{"role": "user", "content": "Say hi"}],
    }


def test_text_completion_stream_on_a_chat_model(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest")
    fake_mistral.reply_stream(["Hel", "lo"], prompt_tokens=4, completion_tokens=2)

    chunks = events(post(client, auth, "/completions", {"model": "small", "prompt": ["Say hi"], "stream": True}))

    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello"
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert fake_mistral.last_request.json["messages"] == [{"role": "user", "content": "Say hi"}]


def test_several_prompts_in_one_request_get_a_clear_400(client, auth, fake_mistral, codestral):
    r = post(client, auth, "/v1/completions", {"model": "code", "prompt": ["def a():", "def b():"]})

    assert r.status_code == 400
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == ("prompt", "invalid_value")
    assert not fake_mistral.requests


def test_text_completion_without_prompt_gets_400(client, auth, fake_mistral, codestral):
    r = post(client, auth, "/v1/completions", {"model": "code"})

    assert r.status_code == 400
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == ("prompt", "missing_required_parameter")


# --- /v1/embeddings -------------------------------------------------------------------------------


@pytest.fixture
def embed(fake_mistral, deployment_for):
    return deployment_for(fake_mistral, alias="embed", model="mistral/mistral-embed")


def test_embeddings_are_floats_by_default(client, auth, fake_mistral, embed):
    r = post(client, auth, "/v1/embeddings", {"model": "embed", "input": ["one", "two words"]})

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["object"] == "list"
    assert body["id"]
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in body["data"])
    assert all(len(d["embedding"]) == 8 and all(isinstance(v, float) for v in d["embedding"]) for d in body["data"])
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3, "completion_tokens": 0}
    assert fake_mistral.last_request.json == {"model": "mistral-embed", "input": ["one", "two words"]}


def test_base64_embeddings_decode_to_the_providers_floats(client, auth, fake_mistral, embed):
    floats = post(client, auth, "/v1/embeddings", {"model": "embed", "input": "hello", "encoding_format": "float"})
    encoded = post(client, auth, "/embeddings", {"model": "embed", "input": "hello", "encoding_format": "base64"})

    vector = floats.json()["data"][0]["embedding"]
    text = encoded.json()["data"][0]["embedding"]
    assert isinstance(text, str)
    decoded = struct.unpack(f"<{len(vector)}f", base64.b64decode(text))
    assert decoded == pytest.approx(vector, rel=1e-6)
    assert len(fake_mistral.requests) == 2
    assert all("encoding_format" not in r.json and set(r.json) <= EMBEDDING_FIELDS for r in fake_mistral.requests)


def test_embeddings_with_unknown_encoding_format_get_400(client, auth, fake_mistral, embed):
    r = post(client, auth, "/v1/embeddings", {"model": "embed", "input": "x", "encoding_format": "int4"})

    assert r.status_code == 400
    assert r.json()["error"]["param"] == "encoding_format"
    assert fake_mistral.requests == []


def test_embeddings_without_input_get_400(client, auth, fake_mistral, embed):
    r = post(client, auth, "/v1/embeddings", {"model": "embed"})

    assert (r.status_code, r.json()["error"]["param"]) == (400, "input")


# --- /v1/models -----------------------------------------------------------------------------------


@pytest.fixture
def catalogue(fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest")
    deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-2503")
    deployment_for(fake_mistral, alias="code", model="codestral/codestral-latest")
    deployment_for(fake_mistral, alias="embed", model="mistral/mistral-embed")
    deployment_for(fake_mistral, alias="team/large", model="mistral/mistral-large-latest")
    deployment_for(fake_mistral, alias="retired", enabled=False)


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_lists_every_enabled_alias_once(client, auth, catalogue, path):
    r = client.get(path, **auth)

    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["code", "embed", "small", "team/large"]
    for card in body["data"]:
        assert card["object"] == "model"
        assert card["type"] == "base"
        assert isinstance(card["created"], int) and card["owned_by"]
        assert set(card["capabilities"]) == {
            "completion_chat",
            "completion_fim",
            "function_calling",
            "fine_tuning",
            "vision",
            "classification",
        }


def test_model_cards_tell_what_each_model_can_do(client, auth, catalogue):
    cards = {m["id"]: m for m in client.get("/v1/models", **auth).json()["data"]}

    assert cards["code"]["capabilities"]["completion_fim"] is True
    assert cards["small"]["capabilities"]["completion_chat"] is True
    assert cards["small"]["capabilities"]["completion_fim"] is False
    assert cards["embed"]["capabilities"]["completion_chat"] is False


def test_models_accepts_the_legacy_sdks_get_with_a_body(client, auth, catalogue):
    r = client.generic("GET", "/v1/models", data="{}", content_type="application/json", **auth)

    assert r.status_code == 200
    assert len(r.json()["data"]) == 4


def test_model_detail(client, auth, catalogue):
    r = client.get("/v1/models/small", **auth)

    assert r.status_code == 200
    assert (r.json()["id"], r.json()["type"], r.json()["root"]) == ("small", "base", "mistral-small-latest")
    assert client.get("/models/team/large", **auth).json()["id"] == "team/large"


@pytest.mark.parametrize("model_id", ["nope", "retired"])
def test_model_detail_of_an_unknown_or_disabled_model_gets_404(client, auth, catalogue, model_id):
    r = client.get(f"/v1/models/{model_id}", **auth)

    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


def test_models_list_is_empty_without_deployments(client, auth, db):
    assert client.get("/v1/models", **auth).json() == {"object": "list", "data": []}


# --- health ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health/liveliness", "/v1/health/liveliness", "/health/liveness"])
def test_liveliness_needs_no_key(client, path):
    r = client.get(path)

    assert r.status_code == 200
    assert r.json() == "I'm alive!"


def test_readiness_needs_no_key_and_checks_the_database(client, db):
    r = client.get("/health/readiness")

    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["db"]) == ("healthy", "connected")
    assert "tollgate_version" in body

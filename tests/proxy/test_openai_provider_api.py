"""The `openai/<model>` provider through the views, against the fake OpenAI-compatible server on 127.0.0.1.

OpenAI's wire differs from Mistral's where a gateway can go wrong: usage is streamed only when
`stream_options.include_usage` asks, in an extra `choices: []` chunk; tool calls arrive in fragments;
embeddings may be base64; a failure after the 200 arrives as a `data: {"error": ...}` event.
"""

import base64
import json
import struct
from collections.abc import Iterator

import pytest

from billing.models import UsageRecord
from tests.conftest import HI
from tests.fakes.openai import FIM_TEXT, FakeOpenAI
from tests.proxy.test_chat_api import WEATHER_TOOL, events, post

USAGE = {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    openai_server.reset()
    yield openai_server
    openai_server.reset()


@pytest.fixture
def gpt(fake_openai, deployment_for):
    return deployment_for(fake_openai, alias="gpt", model="openai/gpt-4o-mini")


def text_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# --- chat -----------------------------------------------------------------------------------------


def test_chat_passes_through_with_the_provider_model_and_the_bearer_key(client, auth, fake_openai, gpt):
    fake_openai.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = post(client, auth, {"model": "gpt", "messages": HI, "seed": 7, "user": "customer-1", "temperature": 0.2})

    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    assert r["x-tollgate-deployment"] == str(gpt.pk)
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Bonjour!"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    sent = fake_openai.last_request
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {FakeOpenAI.API_KEY}"
    assert sent.json == {
        "model": "gpt-4o-mini",
        "messages": HI,
        "seed": 7,
        "user": "customer-1",
        "temperature": 0.2,
    }  # OpenAI's own fields travel unrenamed


def test_tool_call_answer_has_string_content(client, auth, fake_openai, gpt):
    fake_openai.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])

    choice = post(client, auth, {"model": "gpt", "messages": HI, "tools": [WEATHER_TOOL]}).json()["choices"][0]

    assert choice["message"]["content"] == ""  # OpenAI sends null; the legacy Mistral SDK needs a string
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert choice["finish_reason"] == "tool_calls"


# --- streams --------------------------------------------------------------------------------------


def test_stream_asks_the_provider_for_usage_but_a_caller_who_did_not_ask_gets_none(client, auth, fake_openai, gpt):
    fake_openai.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True})

    assert r["Content-Type"] == "text/event-stream"
    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert all(c["choices"] for c in chunks)  # the usage-only chunk Tollgate asked for stays with Tollgate
    assert all("usage" not in c for c in chunks)  # nor the `"usage": null` that came with it
    assert text_of(chunks) == "Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert fake_openai.last_request.json["stream_options"] == {"include_usage": True}  # for pricing
    [row] = UsageRecord.objects.all()
    assert (row.status, row.prompt_tokens, row.completion_tokens, row.tokens_estimated) == (200, 12, 2, False)


def test_stream_with_include_usage_ends_with_exactly_one_usage_chunk(client, auth, fake_openai, gpt):
    fake_openai.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True, "stream_options": {"include_usage": True}})

    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    final, earlier = payloads[-2], payloads[:-2]
    assert final["choices"] == [] and final["usage"] == USAGE
    assert final["id"] == earlier[-1]["id"]
    assert all(c["choices"] and c.get("usage") is None for c in earlier)
    assert text_of(earlier) == "Hello"


def test_streamed_tool_call_fragments_reassemble(client, auth, fake_openai, gpt):
    arguments = {"city": "Paris", "unit": "celsius"}
    fake_openai.reply_stream([], tool_calls=[{"id": "call_abc", "name": "get_weather", "arguments": arguments}])

    payloads = events(post(client, auth, {"model": "gpt", "messages": HI, "tools": [WEATHER_TOOL], "stream": True}))

    assert payloads[-1] == "[DONE]"
    fragments = [call for c in payloads[:-1] for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert len(fragments) > 2  # name first, then the arguments in pieces
    assembled: dict[int, dict] = {}
    for fragment in fragments:
        call = assembled.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
        call["id"] = fragment.get("id") or call["id"]
        call["name"] += fragment.get("function", {}).get("name") or ""
        call["arguments"] += fragment.get("function", {}).get("arguments") or ""
    assert list(assembled) == [0]
    assert (assembled[0]["id"], assembled[0]["name"]) == ("call_abc", "get_weather")
    assert json.loads(assembled[0]["arguments"]) == arguments
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_providers_mid_stream_error_event_reaches_the_caller(client, auth, fake_openai, gpt):
    fake_openai.stream_error(after_chunks=1, message="The model crashed mid-answer")

    payloads = events(post(client, auth, {"model": "gpt", "messages": HI, "stream": True}))

    assert "[DONE]" not in payloads  # an error, never a quiet end
    error = payloads[-1]["error"]
    assert "The model crashed mid-answer" in error["message"]
    assert (error["status"], error["type"]) == (502, "api_error")
    assert text_of(payloads[:-1]) == "Echo:"  # what was generated before the error was relayed


# --- legacy completions and FIM -------------------------------------------------------------------


def test_completions_pass_through_to_the_providers_completions(client, auth, fake_openai, gpt):
    fake_openai.reply("Paris.", endpoint="completions", prompt_tokens=4, completion_tokens=1)

    r = post(
        client, auth, {"model": "gpt", "prompt": "The capital of France is", "max_tokens": 5}, path="/v1/completions"
    )

    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "Paris."
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
    sent = fake_openai.last_request
    assert sent.path == "/v1/completions"
    assert sent.json == {"model": "gpt-4o-mini", "prompt": "The capital of France is", "max_tokens": 5}


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_completions_pass_through(client, auth, fake_openai, gpt, include_usage):
    fake_openai.reply_stream(["Par", "is."], endpoint="completions", prompt_tokens=12, completion_tokens=2)

    r = post(
        client,
        auth,
        {
            "model": "gpt",
            "prompt": "The capital of France is",
            "stream": True,
            "stream_options": {"include_usage": include_usage},
        },
        path="/v1/completions",
    )

    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    chunks = [c for c in payloads[:-1] if c["choices"]]
    assert all(c["object"] == "text_completion" for c in payloads[:-1])
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Paris."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    usage_chunks = [c for c in payloads[:-1] if not c["choices"]]
    assert usage_chunks == ([payloads[-2]] if include_usage else [])
    if include_usage:
        assert payloads[-2]["usage"] == USAGE
    assert all("usage" not in c for c in chunks)
    assert fake_openai.last_request.path == "/v1/completions"


def test_fim_goes_to_completions_with_prompt_and_suffix_and_is_answered_chat_shaped(client, auth, fake_openai, gpt):
    r = post(
        client,
        auth,
        {"model": "gpt", "prompt": "def add(a, b):", "suffix": "\n\nprint(add(1, 2))", "max_tokens": 20},
        path="/v1/fim/completions",
    )

    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": FIM_TEXT}
    assert body["choices"][0]["finish_reason"] == "stop"
    sent = fake_openai.last_request
    assert sent.path == "/v1/completions"
    assert (sent.json["model"], sent.json["prompt"], sent.json["suffix"]) == (
        "gpt-4o-mini",
        "def add(a, b):",
        "\n\nprint(add(1, 2))",
    )
    assert "stream" not in sent.json


def test_streamed_fim_is_answered_with_chat_chunks(client, auth, fake_openai, gpt):
    payloads = events(
        post(
            client,
            auth,
            {"model": "gpt", "prompt": "def add(a, b):", "suffix": "\n", "stream": True},
            path="/v1/fim/completions",
        )
    )

    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)
    assert text_of(chunks) == FIM_TEXT
    assert fake_openai.last_request.path == "/v1/completions"


# --- embeddings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_embeddings_are_forwarded_as_asked_and_get_id_and_completion_tokens(
    client, auth, fake_openai, gpt, encoding_format
):
    r = post(
        client,
        auth,
        {"model": "gpt", "input": ["one", "two"], "encoding_format": encoding_format},
        path="/v1/embeddings",
    )

    assert r.status_code == 200
    body = r.json()
    assert body["id"]  # the legacy Mistral SDK needs both of these
    assert body["usage"]["completion_tokens"] == 0
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 2
    assert fake_openai.last_request.json["encoding_format"] == encoding_format
    vectors = [item["embedding"] for item in body["data"]]
    if encoding_format == "base64":
        vectors = [list(struct.unpack("<8f", base64.b64decode(v))) for v in vectors]
    assert [len(v) for v in vectors] == [8, 8]
    assert abs(sum(x * x for x in vectors[0]) - 1) < 1e-3  # unit vectors survived the round trip


# --- upstream errors ------------------------------------------------------------------------------


def test_upstream_429_is_a_429_with_retry_after(client, auth, fake_openai, gpt):
    fake_openai.fail(429, headers={"retry-after": "7"})

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 429
    assert r["Retry-After"] == "7"
    error = r.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "Rate limit reached" in error["message"]


def test_upstream_500_is_a_502(client, auth, fake_openai, gpt):
    fake_openai.fail(500)

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 502
    assert "The server had an error" in r.json()["error"]["message"]


def test_upstream_401_is_a_502_upstream_auth_error(client, auth, fake_openai, deployment_for):
    deployment_for(fake_openai, alias="gpt", model="openai/gpt-4o-mini", api_key="sk-revoked-key-000000")

    r = post(client, auth, {"model": "gpt", "messages": HI})

    assert r.status_code == 502  # the caller's key is fine; the deployment's is not
    assert r.json()["error"]["code"] == "upstream_auth_error"
    assert "Incorrect API key provided" in r.json()["error"]["message"]


def test_upstream_400_is_a_400_with_the_providers_message(client, auth, fake_openai, gpt):
    fake_openai.fail(
        400,
        {
            "error": {
                "message": "Unrecognized request argument supplied: top_k",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )

    r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True})  # raised before the stream starts

    assert r.status_code == 400
    assert r["Content-Type"] == "application/json"
    error = r.json()["error"]
    assert "Unrecognized request argument supplied: top_k" in error["message"]
    assert error["type"] == "invalid_request_error"

"""Tests of the fake Mistral server itself, over plain HTTP with urllib3 (no Django needed).

The gateway's tests trust this fake to behave like api.mistral.ai, so its wire format is pinned here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from .mistral import FakeMistral

HI = [{"role": "user", "content": "Hi there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeMistral]:
    with FakeMistral.running() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeMistral) -> FakeMistral:
    server.reset()
    return server


@pytest.fixture(scope="module")
def http() -> urllib3.PoolManager:
    return urllib3.PoolManager(retries=False, timeout=5)


def call(
    http: urllib3.PoolManager,
    fake: FakeMistral,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    key: str = FakeMistral.API_KEY,
    **kwargs: Any,
) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    return http.request(method, f"{fake.url}{path}", body=data, headers=headers, **kwargs)


def events(response: urllib3.BaseHTTPResponse) -> list[Any]:
    """The `data:` payloads of an SSE body, [DONE] kept as a string."""
    lines = response.data.decode().split("\n\n")
    assert lines[-1] == ""
    return [json.loads(line[6:]) if line != "data: [DONE]" else "[DONE]" for line in lines[:-1]]


def test_wrong_key_gets_401_with_request_id(http, fake):
    r = call(http, fake, "/chat/completions", {"model": "mistral-small-latest", "messages": HI}, key="nope")

    assert r.status == 401
    assert r.json()["message"] == "Unauthorized"
    assert len(r.json()["request_id"]) == 32


def test_unknown_path_gets_404_json(http, fake):
    assert call(http, fake, "/nope", {}).status == 404
    assert call(http, fake, "/chat/completions", method="GET").status == 405


def test_chat_answers_mistral_shaped_json_and_records_the_request(http, fake):
    r = call(
        http,
        fake,
        "/chat/completions",
        {"model": "mistral-small-latest", "messages": HI, "random_seed": 1, "tool_choice": "auto"},
    )

    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "mistral-small-latest"
    assert body["choices"] == [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Echo: Hi there", "tool_calls": None, "prefix": False},
        }
    ]
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert fake.last_request.json["random_seed"] == 1
    assert fake.last_request.headers["authorization"] == f"Bearer {FakeMistral.API_KEY}"


def test_scripted_reply_sets_text_and_usage(http, fake):
    fake.reply("Bonjour", prompt_tokens=7, completion_tokens=3)

    body = call(http, fake, "/chat/completions", {"model": "m", "messages": HI}).json()

    assert body["choices"][0]["message"]["content"] == "Bonjour"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_stream_has_role_chunk_deltas_usage_on_last_chunk_and_done(http, fake):
    fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    r = call(http, fake, "/chat/completions", {"model": "m", "messages": HI, "stream": True})

    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Transfer-Encoding"] == "chunked"
    got = events(r)
    assert got[-1] == "[DONE]"
    assert [c["object"] for c in got[:-1]] == ["chat.completion.chunk"] * 4
    assert [c["choices"][0]["delta"] for c in got[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {"content": ""},
    ]
    assert [c["choices"][0]["finish_reason"] for c in got[:-1]] == [None, None, None, "stop"]
    assert "usage" not in got[1]
    assert got[-2]["usage"] == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}


def test_stream_events_arrive_as_they_are_written(http, fake):
    fake.reply_stream(["slow", " words"], delay=0.15)
    started = time.monotonic()

    r = call(http, fake, "/chat/completions", {"model": "m", "messages": HI, "stream": True}, preload_content=False)
    chunks = r.read_chunked()
    first = next(chunks)

    assert first.startswith(b"data: {") and b'"role": "assistant"' in first
    assert time.monotonic() - started < 0.1
    rest = b"".join(chunks)
    assert rest.endswith(b"data: [DONE]\n\n") and time.monotonic() - started >= 0.3


def test_keep_alive_reuses_one_connection_after_json_and_stream(fake):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(fake.root.rsplit(":", 1)[1]), maxsize=1, block=True)
    headers = {"Authorization": f"Bearer {FakeMistral.API_KEY}"}
    for stream in (False, True, False):
        body = json.dumps({"model": "m", "messages": HI, "stream": stream}).encode()
        assert pool.request("POST", "/v1/chat/completions", body=body, headers=headers).status == 200

    assert pool.num_connections == 1


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"stream_options": {"include_usage": True}}, ["body", "stream_options"]),
        ({"seed": 3}, ["body", "seed"]),
        (
            {
                "messages": [
                    {"role": "user", "content": "Weather?"},
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "id": "abcDEF123",
                                "type": "function",
                                "index": 0,
                                "function": {"name": "get_weather", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "abcDEF123", "content": "sunny"},
                ]
            },
            ["body", "messages", 1, "assistant", "tool_calls", 0, "index"],
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache": True}]}]},
            ["body", "messages", 0, "user", "content", 0, "text", "cache"],
        ),
    ],
)
def test_unknown_fields_get_422_extra_forbidden(http, fake, extra, loc):
    fake.reply("unused")

    r = call(http, fake, "/chat/completions", {"model": "m", "messages": HI, **extra})

    assert r.status == 422
    body = r.json()
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    [error] = body["message"]["detail"]
    assert error["type"] == "extra_forbidden" and error["loc"] == loc
    assert error["msg"] == "Extra inputs are not permitted"
    ok = call(http, fake, "/chat/completions", {"model": "m", "messages": HI}).json()
    assert ok["choices"][0]["message"]["content"] == "unused"  # a refused request consumes no script


@pytest.mark.parametrize(
    ("body", "kind", "status"),
    [
        ({"messages": HI}, "missing", 422),
        ({"model": "m", "messages": []}, "too_short", 422),
        ({"model": "m", "messages": HI, "tool_choice": "sometimes"}, "literal_error", 422),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "union_tag_invalid", 422),
        ({"model": "m", "messages": [{"role": "assistant", "content": "x"}]}, None, 400),
    ],
)
def test_invalid_chat_requests_are_refused(http, fake, body, kind, status):
    r = call(http, fake, "/chat/completions", body)

    assert r.status == status
    if kind:
        assert r.json()["message"]["detail"][0]["type"] == kind


def test_tools_get_a_tool_call_with_a_nine_char_id(http, fake):
    body = call(
        http,
        fake,
        "/chat/completions",
        {
            "model": "m",
            "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
            "tools": [WEATHER_TOOL],
        },
    ).json()

    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == ""
    [tool_call] = choice["message"]["tool_calls"]
    assert len(tool_call["id"]) == 9 and tool_call["id"].isalnum()
    assert tool_call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


def test_streamed_tool_call_comes_whole_in_one_delta(http, fake):
    r = call(
        http,
        fake,
        "/chat/completions",
        {"model": "m", "messages": HI, "tools": [WEATHER_TOOL], "tool_choice": "any", "stream": True},
    )

    got = events(r)
    [call_delta] = [c["choices"][0]["delta"] for c in got[:-1] if "tool_calls" in c["choices"][0]["delta"]]
    assert call_delta["tool_calls"][0]["index"] == 0
    assert call_delta["tool_calls"][0]["function"]["name"] == "get_weather"
    assert got[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_result_gets_summarised(http, fake):
    call_ = {"id": "abcDEF123", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [call_]},
        {"role": "tool", "name": "get_weather", "tool_call_id": "abcDEF123", "content": "sunny, 21C"},
    ]

    r = call(http, fake, "/chat/completions", {"model": "m", "messages": messages, "tools": [WEATHER_TOOL]})

    assert r.json()["choices"][0]["message"]["content"] == "The tool returned: sunny, 21C"


def test_fim_answers_chat_shaped_completions(http, fake):
    body = call(
        http,
        fake,
        "/fim/completions",
        {"model": "codestral-latest", "prompt": "def add(a, b):", "suffix": "", "min_tokens": 1},
    ).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "return a + b"

    streamed = events(
        call(http, fake, "/fim/completions", {"model": "codestral-latest", "prompt": "x", "stream": True})
    )
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in streamed[:-1]) == "return a + b"


def test_embeddings_are_deterministic_and_float_only(http, fake):
    request = {"model": "mistral-embed", "input": ["hello world", "bye"]}
    first, second = (call(http, fake, "/embeddings", request).json() for _ in range(2))

    assert first["object"] == "list" and first["id"]
    assert [d["embedding"] for d in first["data"]] == [d["embedding"] for d in second["data"]]
    assert [len(d["embedding"]) for d in first["data"]] == [8, 8]
    assert first["data"][0]["embedding"] != first["data"][1]["embedding"]
    assert first["usage"] == {"prompt_tokens": 3, "total_tokens": 3, "completion_tokens": 0}
    refused = call(http, fake, "/embeddings", {**request, "encoding_format": "base64"})
    assert refused.status == 422
    assert refused.json()["message"]["detail"][0]["loc"] == ["body", "encoding_format"]


def test_models_list_and_card(http, fake):
    listed = call(http, fake, "/models", {}, method="GET").json()  # the legacy SDK sends a {} body

    assert listed["object"] == "list"
    ids = [card["id"] for card in listed["data"]]
    assert ids == ["mistral-small-latest", "open-mistral-nemo", "codestral-latest", "mistral-embed"]
    assert all(c["type"] == "base" and "completion_chat" in c["capabilities"] for c in listed["data"])
    assert call(http, fake, "/models/codestral-latest", method="GET").json()["capabilities"]["completion_fim"]
    assert call(http, fake, "/models/gpt-4", method="GET").status == 404


def test_fail_sends_the_status_then_the_next_request_succeeds(http, fake):
    fake.fail(429, headers={"Retry-After": "1"})
    fake.fail(503, {"object": "error", "message": "overloaded"}, endpoint="embeddings")

    limited = call(http, fake, "/chat/completions", {"model": "m", "messages": HI, "stream": True})
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["type"] == "rate_limited"
    assert call(http, fake, "/embeddings", {"model": "e", "input": "x"}).json()["message"] == "overloaded"
    assert call(http, fake, "/chat/completions", {"model": "m", "messages": HI}).status == 200


def test_hang_sends_nothing_until_the_client_times_out(http, fake):
    fake.hang(2)

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        call(http, fake, "/chat/completions", {"model": "m", "messages": HI}, timeout=0.2)
    assert call(http, fake, "/chat/completions", {"model": "m", "messages": HI}).status == 200


def test_cut_stream_drops_the_connection_without_done(fake):
    fake.cut_stream(after_chunks=1)
    conn = urllib3.HTTPConnectionPool("127.0.0.1", int(fake.root.rsplit(":", 1)[1]), retries=False)
    r = conn.request(
        "POST",
        "/v1/chat/completions",
        preload_content=False,
        body=json.dumps({"model": "m", "messages": HI, "stream": True}).encode(),
        headers={"Authorization": f"Bearer {FakeMistral.API_KEY}"},
    )

    received = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for piece in r.stream(decode_content=False):
            received.append(piece)
    text = b"".join(received).decode()
    assert text.count("data: ") == 2  # the role chunk and one content chunk
    assert "[DONE]" not in text and '"usage"' not in text


def test_many_concurrent_connections_are_served(fake):
    statuses: list[int] = []

    def one() -> None:
        pool = urllib3.PoolManager(retries=False, timeout=5)
        r = call(pool, fake, "/chat/completions", {"model": "m", "messages": HI, "stream": True})
        statuses.append(r.status)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 50

"""Tests of the fake OpenAI-compatible server, driven by the real `openai` SDK (no Django needed).

The gateway's tests trust this fake to behave like an OpenAI-compatible upstream; parsing every
answer with the SDK that production clients use pins the wire format to what that SDK accepts.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

from .openai import FIM_TEXT, FakeOpenAI

HI = [{"role": "user", "content": "Hi there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[OpenAI]:
    with OpenAI(base_url=fake.url, api_key=FakeOpenAI.API_KEY, max_retries=0, timeout=5) as sdk:
        yield sdk


def test_url_is_an_openai_api_base(fake):
    assert fake.url == f"{fake.root}/v1" and fake.root.startswith("http://127.0.0.1:")


def test_chat_answers_openai_shaped_json_and_ignores_unknown_fields(client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HI, seed=1, extra_body={"top_k": 3}
    )
    completion = raw.parse()

    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini" and completion.system_fingerprint.startswith("fp_")
    [choice] = completion.choices
    assert choice.message.content == "Echo: Hi there" and choice.message.refusal is None
    assert choice.finish_reason == "stop"
    assert raw.http_response.json()["choices"][0] == {
        "index": 0,
        "logprobs": None,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Echo: Hi there", "refusal": None},
    }
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert fake.last_request.json["top_k"] == 3 and fake.last_request.json["seed"] == 1
    assert fake.last_request.headers["authorization"] == f"Bearer {FakeOpenAI.API_KEY}"


def test_scripted_reply_sets_text_and_usage(client, fake):
    fake.reply("Bonjour", prompt_tokens=7, completion_tokens=3)

    completion = client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert completion.choices[0].message.content == "Bonjour"
    assert completion.usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
    }


def test_stream_without_include_usage_has_no_usage_anywhere(client, fake):
    fake.reply_stream(["Hel", "lo"])

    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))

    assert [c.object for c in chunks] == ["chat.completion.chunk"] * 4
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].delta.model_dump(exclude_unset=True) for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, "stop"]
    assert all("usage" not in c.model_fields_set for c in chunks)


def test_stream_with_include_usage_ends_with_a_usage_chunk(client, fake):
    fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    *deltas, last = chunks
    assert "".join(c.choices[0].delta.content or "" for c in deltas) == "Hello"
    assert all("usage" in c.model_fields_set and c.usage is None for c in deltas)
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (12, 2, 14)


def test_streamed_tool_call_comes_in_pieces_the_sdk_reassembles(client, fake):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], stream=True
    )
    calls = [d.tool_calls[0] for c in stream if (d := c.choices[0].delta).tool_calls]

    first, *fragments = calls
    assert first.id.startswith("call_") and first.type == "function"
    assert first.function.name == "get_weather" and first.function.arguments == ""
    assert len(fragments) > 1
    assert all(f.index == 0 and f.id is None and f.function.name is None for f in fragments)
    assert json.loads("".join(f.function.arguments for f in fragments)) == {"city": "Paris"}

    with client.chat.completions.stream(model="gpt-4o-mini", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL]) as helper:
        final = helper.get_final_completion()
    [call] = final.choices[0].message.tool_calls
    assert call.function.arguments == '{"city": "Paris"}' and final.choices[0].finish_reason == "tool_calls"


def test_tool_call_then_tool_result_round_trip(client, fake):
    first = client.chat.completions.create(model="gpt-4o-mini", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    message = first.choices[0].message
    [call] = message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    assert len(call.id) == 29 and call.id[5:].isalnum()
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    result = {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}
    messages = [*WEATHER_QUESTION, message.to_dict(), result]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool returned: sunny, 21C"
    assert fake.last_request.json["messages"][1]["tool_calls"][0]["id"] == call.id


@pytest.mark.parametrize(
    ("choice", "calls_tool"),
    [
        ("required", True),
        ("none", False),
        ("auto", False),
        ({"type": "function", "function": {"name": "get_time"}}, True),
    ],
)
def test_tool_choice_decides_the_default_reply(client, fake, choice, calls_tool):
    tools = [WEATHER_TOOL, {"type": "function", "function": {"name": "get_time", "parameters": {}}}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=HI, tools=tools, tool_choice=choice)

    message = completion.choices[0].message
    assert bool(message.tool_calls) is calls_tool
    if isinstance(choice, dict):
        assert message.tool_calls[0].function.name == "get_time"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({"model": "m", "messages": []}, "messages", "empty_array"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        ({"model": "m", "messages": HI, "stream_options": {"include_usage": True}}, "stream_options", None),
        ({"messages": HI}, None, None),
    ],
)
def test_invalid_chat_requests_get_400_in_openai_envelope(client, fake, body, param, code):
    fake.reply("unused")

    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)

    assert caught.value.status_code == 400 and caught.value.type == "invalid_request_error"
    assert (caught.value.param, caught.value.code) == (param, code)
    ok = client.chat.completions.create(model="m", messages=HI)
    assert ok.choices[0].message.content == "unused"  # a refused request consumes no script


def test_legacy_completions_answer_each_prompt(client, fake):
    single = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert single.object == "text_completion" and single.id.startswith("cmpl-")
    assert [(c.index, c.text, c.finish_reason) for c in single.choices] == [(0, "Echo: Say hi", "stop")]

    batch = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["a", "b"])
    assert [c.text for c in batch.choices] == ["Echo: a", "Echo: b"]

    inserted = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="def add(a, b):", suffix="\n")
    assert inserted.choices[0].text == FIM_TEXT
    assert fake.last_request.json["suffix"] == "\n"


def test_legacy_completion_streams_with_and_without_usage(client, fake):
    fake.reply_stream(["Hel", "lo"], prompt_tokens=4, completion_tokens=2, endpoint="completions")
    fake.reply_stream(["Hel", "lo"], endpoint="completions")

    with_usage = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="x", stream=True, stream_options={"include_usage": True}
        )
    )
    *texts, last = with_usage
    assert "".join(c.choices[0].text for c in texts) == "Hello" and texts[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "text_completion" and c.usage is None for c in texts)
    assert last.choices == [] and last.usage.total_tokens == 6

    without = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", stream=True))
    assert "".join(c.choices[0].text for c in without) == "Hello"
    assert all("usage" not in c.model_fields_set for c in without)


def test_embeddings_float_and_base64_agree(client, fake):
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float"
    )
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])

    assert fake.last_request.json["encoding_format"] == "base64"  # what the SDK asks for by default
    assert floats.object == "list" and [d.index for d in floats.data] == [0, 1]
    assert [len(d.embedding) for d in floats.data] == [8, 8]
    assert floats.data[0].embedding != floats.data[1].embedding
    for f, d in zip(floats.data, decoded.data, strict=True):
        assert d.embedding == pytest.approx(f.embedding, abs=1e-6)
    assert floats.usage.model_dump(exclude_none=True) == {"prompt_tokens": 3, "total_tokens": 3}

    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="x", encoding_format="base64", dimensions=4
    ).http_response.json()
    assert set(raw) == {"object", "data", "model", "usage"}
    assert len(struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))) == 4


def test_models_list_and_retrieve(client, fake):
    ids = [m.id for m in client.models.list()]

    assert ids == ["gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct", "text-embedding-3-small"]
    assert client.models.retrieve("gpt-4o-mini").owned_by == "system"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-9")
    assert caught.value.code == "model_not_found"


def test_wrong_key_gets_401_invalid_api_key(fake):
    with (
        OpenAI(base_url=fake.url, api_key="sk-wrong-1234", max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        wrong.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert caught.value.code == "invalid_api_key" and caught.value.type == "invalid_request_error"
    assert caught.value.body["message"].startswith("Incorrect API key provided: sk-******1234.")


def test_unknown_path_gets_404_invalid_url(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/nope", cast_to=object)

    assert caught.value.body["message"] == "Invalid URL (GET /v1/nope)"


def test_fail_sends_the_status_then_the_next_request_succeeds(client, fake):
    fake.fail(429, headers={"retry-after": "1"})
    fake.fail(500, endpoint="embeddings")

    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    assert limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError) as broken:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert broken.value.type == "server_error"
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content


def test_hang_lets_the_client_time_out(client, fake):
    fake.hang(2)

    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, timeout=0.2)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices


def test_cut_stream_makes_the_sdk_raise(client, fake):
    fake.cut_stream(after_chunks=1)
    fake.cut_stream(after_chunks=0)

    received = []
    with pytest.raises(openai.APIConnectionError):  # this SDK wraps the transport's error mid-stream too
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Echo:"]
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)


def test_stream_error_sends_openais_error_event_which_the_sdk_raises(client, fake):
    fake.stream_error(after_chunks=1, message="Model overloaded mid-answer")

    received = []
    with pytest.raises(openai.APIError) as e:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Echo:"]
    assert "Model overloaded mid-answer" in e.value.message
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HI).choices  # the queue moved on

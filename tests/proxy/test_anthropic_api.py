"""The `anthropic/<model>` provider through the views, against the fake Messages API on 127.0.0.1.

The fake checks Anthropic's wire: `x-api-key`, `anthropic-version`, `max_tokens` present, no
unknown field, only user/assistant turns, and every tool_result answering the turn before.
"""

import base64
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from proxy.models import Deployment
from tests.conftest import HI
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.bedrock import png
from tests.proxy.test_chat_api import WEATHER_TOOL, events, post

SONNET = (Decimal(3) / 1_000_000, Decimal(15) / 1_000_000)
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(png()).decode()


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic.running() as server:
        yield server


@pytest.fixture
def fake_anthropic(anthropic_server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    anthropic_server.reset()
    yield anthropic_server
    anthropic_server.reset()


@pytest.fixture
def claude(fake_anthropic, db) -> Deployment:
    return Deployment.objects.create(
        model_name="claude",
        litellm_model="anthropic/claude-sonnet-4-5-20250929",
        api_base=fake_anthropic.root,
        api_key=FakeAnthropic.API_KEY,
    )


def text_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


# --- chat -----------------------------------------------------------------------------------------


def test_chat_sends_a_messages_request_with_anthropics_headers_and_is_priced(client, auth, fake_anthropic, claude):
    fake_anthropic.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = post(
        client,
        auth,
        {
            "model": "claude",
            "messages": [{"role": "system", "content": "Be brief."}, *HI],
            "max_tokens": 100,
            "temperature": 0.5,
            "stop": ["END"],
        },
    )

    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    sent = fake_anthropic.last_request
    assert (sent.path, sent.headers["x-api-key"], sent.headers["anthropic-version"]) == (
        "/v1/messages",
        FakeAnthropic.API_KEY,
        "2023-06-01",
    )
    assert sent.json == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }
    row = UsageRecord.objects.get()
    assert row.cost == 7 * SONNET[0] + 2 * SONNET[1]
    assert row.price_source.startswith("list:anthropic/claude-sonnet-4-5")


def test_without_max_tokens_the_models_output_limit_is_sent(client, auth, fake_anthropic, claude):
    assert post(client, auth, {"model": "claude", "messages": HI}).status_code == 200
    assert fake_anthropic.last_request.json["max_tokens"] == 64_000  # Sonnet 4.5's, from the price list


def test_model_info_max_output_tokens_wins_and_an_unlisted_model_gets_4096(client, auth, fake_anthropic, db):
    base = {"api_base": fake_anthropic.root, "api_key": FakeAnthropic.API_KEY}
    Deployment.objects.create(
        model_name="a", litellm_model="anthropic/claude-x", model_info={"max_output_tokens": 1000}, **base
    )
    Deployment.objects.create(
        model_name="b", litellm_model="anthropic/claude-x", input_cost_per_token=0, output_cost_per_token=0, **base
    )

    post(client, auth, {"model": "a", "messages": HI})
    assert fake_anthropic.last_request.json["max_tokens"] == 1000
    post(client, auth, {"model": "b", "messages": HI})
    assert fake_anthropic.last_request.json["max_tokens"] == 4096


def test_cache_tokens_are_billed_as_prompt_tokens(client, auth, fake_anthropic, claude):
    fake_anthropic.reply("Hi", prompt_tokens=10, completion_tokens=3)
    fake_anthropic.cache_tokens(creation=100, read=1000)

    usage = post(client, auth, {"model": "claude", "messages": HI}).json()["usage"]

    assert usage["prompt_tokens"] == 1110
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1000}
    assert UsageRecord.objects.get().prompt_tokens == 1110


def test_tool_use_round_trip(client, auth, fake_anthropic, claude):
    question = [{"role": "user", "content": "What's the weather in Paris?"}]

    first = post(
        client, auth, {"model": "claude", "messages": question, "tools": [WEATHER_TOOL], "tool_choice": "auto"}
    )

    choice = first.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("toolu_") and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert fake_anthropic.last_request.json["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]

    messages = [
        *question,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": "22C"}'},
    ]
    second = post(client, auth, {"model": "claude", "messages": messages, "tools": [WEATHER_TOOL]})

    assert second.status_code == 200, second.content
    assert "22C" in second.json()["choices"][0]["message"]["content"]
    sent = fake_anthropic.last_request.json["messages"]
    assert sent[1]["content"][0] == {
        "type": "tool_use",
        "id": call["id"],
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert sent[2]["content"][0]["tool_use_id"] == call["id"]


def test_required_tool_choice_is_any(client, auth, fake_anthropic, claude):
    post(client, auth, {"model": "claude", "messages": HI, "tools": [WEATHER_TOOL], "tool_choice": "required"})
    assert fake_anthropic.last_request.json["tool_choice"] == {"type": "any"}


def test_image_parts(client, auth, fake_anthropic, claude):
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]

    r = post(client, auth, {"model": "claude", "messages": [{"role": "user", "content": content}]})

    assert r.json()["choices"][0]["message"]["content"] == "I see 2 image(s) from base64, url."
    blocks = fake_anthropic.last_request.json["messages"][0]["content"]
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_DATA_URL.split(",")[1]}
    assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}


# --- streams --------------------------------------------------------------------------------------


def test_stream_becomes_openai_chunks_with_usage_on_the_last(client, auth, fake_anthropic, claude):
    fake_anthropic.reply_stream(["Hel", "lo", "!"], prompt_tokens=12, completion_tokens=3)

    r = post(client, auth, {"model": "claude", "messages": HI, "stream": True})

    assert r["Content-Type"] == "text/event-stream"
    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert text_of(chunks) == "Hello!"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert fake_anthropic.last_request.json["stream"] is True
    row = UsageRecord.objects.get()
    assert (row.status, row.prompt_tokens, row.completion_tokens, row.tokens_estimated) == (200, 12, 3, False)


def test_stream_with_include_usage_ends_with_one_usage_chunk(client, auth, fake_anthropic, claude):
    fake_anthropic.reply_stream(["Hi"], prompt_tokens=4, completion_tokens=1)

    payloads = events(
        post(
            client, auth, {"model": "claude", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
        )
    )

    assert payloads[-2]["choices"] == [] and payloads[-2]["usage"]["total_tokens"] == 5
    assert "stream_options" not in fake_anthropic.last_request.json  # Anthropic refuses unknown fields


def test_streamed_tool_call_arrives_whole(client, auth, fake_anthropic, claude):
    fake_anthropic.reply_stream(
        [], tool_calls=[{"id": "toolu_01", "name": "get_weather", "arguments": {"city": "Lyon"}}]
    )

    chunks = events(post(client, auth, {"model": "claude", "messages": HI, "tools": [WEATHER_TOOL], "stream": True}))[
        :-1
    ]

    calls = [c["choices"][0]["delta"]["tool_calls"] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert calls == [
        [
            {
                "index": 0,
                "id": "toolu_01",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
            }
        ]
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_an_error_event_mid_stream_ends_with_an_error_event(client, auth, fake_anthropic, claude):
    fake_anthropic.error_mid_stream(after_chunks=1, kind="overloaded_error")
    fake_anthropic.reply_stream(["Hel", "lo"])  # what the stream would have said

    payloads = events(post(client, auth, {"model": "claude", "messages": HI, "stream": True}))

    assert payloads[-1]["error"]["status"] == 503
    assert payloads[-1]["error"]["code"] == "overloaded"
    assert UsageRecord.objects.get().status >= 500  # recorded as failed


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("overloaded_error", 503, "overloaded"),
        ("rate_limit_error", 429, "upstream_rate_limited"),
        ("invalid_request_error", 400, None),
        ("authentication_error", 502, "upstream_auth_error"),
        ("api_error", 502, "upstream_error"),
    ],
)
def test_each_error_type(client, auth, fake_anthropic, claude, kind, status, code):
    fake_anthropic.error(kind)

    r = post(client, auth, {"model": "claude", "messages": HI})

    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert "anthropic said" in r.json()["error"]["message"]


def test_a_wrong_key_is_a_502_that_does_not_leak_it(client, auth, fake_anthropic, db):
    Deployment.objects.create(
        model_name="claude",
        litellm_model="anthropic/claude-3-5-haiku-20241022",
        api_base=fake_anthropic.root,
        api_key="sk-ant-wrong-999",
    )

    r = post(client, auth, {"model": "claude", "messages": HI})

    assert (r.status_code, r.json()["error"]["code"]) == (502, "upstream_auth_error")
    assert "sk-ant-wrong-999" not in r.content.decode()


def test_the_key_from_the_environment(client, auth, fake_anthropic, db, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FakeAnthropic.API_KEY)
    Deployment.objects.create(
        model_name="claude", litellm_model="anthropic/claude-3-5-haiku-20241022", api_base=fake_anthropic.url
    )

    assert post(client, auth, {"model": "claude", "messages": HI}).status_code == 200


def test_no_key_at_all_is_a_misconfiguration(client, auth, fake_anthropic, db):
    Deployment.objects.create(
        model_name="claude", litellm_model="anthropic/claude-3-5-haiku-20241022", api_base=fake_anthropic.url
    )

    r = post(client, auth, {"model": "claude", "messages": HI})

    assert (r.status_code, r.json()["error"]["code"]) == (500, "provider_misconfigured")


def test_text_completions_go_through_messages(client, auth, fake_anthropic, claude):
    r = post(client, auth, {"model": "claude", "prompt": "Say hi", "max_tokens": 5}, path="/v1/completions")

    assert r.json()["choices"][0]["text"] == "Echo: Say hi"


def test_embeddings_are_unsupported(client, auth, fake_anthropic, claude):
    r = post(client, auth, {"model": "claude", "input": "x"}, path="/v1/embeddings")

    assert (r.status_code, r.json()["error"]["code"]) == (400, "unsupported_operation")

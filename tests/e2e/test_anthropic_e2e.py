"""The `anthropic/` provider end to end: the openai and Mistral SDKs → a real Tollgate (gunicorn, gevent
workers) → the fake Messages API, which checks the x-api-key and anthropic-version headers.
"""

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import Tollgate, running
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.bedrock import png

KEY = "sk-e2e-anthropic-master-key-abcdefghijklmnop"
CONFIG = """\
model_list:
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
      api_base: {api_base}
      api_key: os.environ/E2E_ANTHROPIC_API_KEY

# Each error test sees the provider's error itself: no retries, no cooldown after failures.
router_settings:
  num_retries: 0
  disable_cooldowns: true

general_settings:
  master_key: {key}
"""
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
SONNET = (3e-6, 15e-6)  # per input and output token
IMAGE = "data:image/png;base64," + base64.b64encode(png()).decode()


@pytest.fixture(scope="module")
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic.running() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(anthropic: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("tollgate-anthropic")
    config = Path(tmp / "litellm_config.yaml")
    config.write_text(CONFIG.format(api_base=anthropic.root, key=KEY))
    with running(config, key=KEY, tmp=tmp, workers=1, env={"E2E_ANTHROPIC_API_KEY": FakeAnthropic.API_KEY}) as server:
        yield server


@pytest.fixture
def fake(anthropic: FakeAnthropic) -> FakeAnthropic:
    anthropic.reset()
    return anthropic


def image_message() -> list[dict]:
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    return [{"role": "user", "content": content}]


# --- the openai SDK -------------------------------------------------------------------------------


def test_chat_with_usage_and_cost(client, fake):
    fake.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet", messages=[{"role": "system", "content": "Be brief."}, *HI]
    )

    r = raw.parse()
    assert r.choices[0].message.content == "Bonjour!"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (7, 2)
    assert float(raw.headers["x-tollgate-cost"]) == pytest.approx(7 * SONNET[0] + 2 * SONNET[1])
    sent = fake.last_request
    assert (sent.headers["x-api-key"], sent.headers["anthropic-version"]) == (FakeAnthropic.API_KEY, "2023-06-01")
    assert sent.json["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.json["max_tokens"] == 64_000


def test_stream_with_include_usage(client, fake):
    fake.reply_stream(["Hel", "lo", "!"], prompt_tokens=5, completion_tokens=3)

    chunks = list(
        client.chat.completions.create(
            model="claude-sonnet", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    assert [c.choices for c in chunks].count([]) == 1
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_tool_call_round_trip(client, fake):
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]
    calls: dict[int, dict] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model="claude-sonnet", messages=messages, tools=[WEATHER_TOOL], stream=True
    ):
        for fragment in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += fragment.id or ""
            call["name"] += (fragment.function and fragment.function.name) or ""
            call["arguments"] += (fragment.function and fragment.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish

    assert finish == "tool_calls"
    [call] = calls.values()
    assert call["id"].startswith("toolu_") and call["name"] == "get_current_weather"
    assert json.loads(call["arguments"]) == {"location": "Paris"}

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": "22C"}'},
    ]
    second = client.chat.completions.create(model="claude-sonnet", messages=messages, tools=[WEATHER_TOOL])

    assert "22C" in second.choices[0].message.content
    assert fake.last_request.json["messages"][2]["content"][0]["tool_use_id"] == call["id"]


def test_image_input(client, fake):
    r = client.chat.completions.create(model="claude-sonnet", messages=image_message())

    assert r.choices[0].message.content == "I see 1 image(s) from base64."
    source = fake.last_request.json["messages"][0]["content"][1]["source"]
    assert (source["type"], source["media_type"]) == ("base64", "image/png")


@pytest.mark.parametrize(
    ("kind", "exception", "status"),
    [
        ("overloaded_error", openai.InternalServerError, 503),
        ("rate_limit_error", openai.RateLimitError, 429),
        ("invalid_request_error", openai.BadRequestError, 400),
        ("authentication_error", openai.APIStatusError, 502),
    ],
)
def test_each_error(client, fake, kind, exception, status):
    fake.error(kind)

    with pytest.raises(exception) as e:
        client.chat.completions.create(model="claude-sonnet", messages=HI)

    assert e.value.status_code == status


def test_a_mid_stream_error_event_raises(client, fake):
    fake.error_mid_stream(after_chunks=1, kind="overloaded_error", message="Overloaded")
    fake.reply_stream(["Hel", "lo"])

    stream = client.chat.completions.create(model="claude-sonnet", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as e:
        for _ in stream:
            pass
    assert "Overloaded" in e.value.message


# --- the Mistral SDK ------------------------------------------------------------------------------


def test_mistral_sdk_chat(mistral, fake):
    fake.reply("Salut!", prompt_tokens=4, completion_tokens=2)

    r = mistral.chat.complete(model="claude-sonnet", messages=HI)

    assert r.choices[0].message.content == "Salut!"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, 2)


def test_mistral_sdk_stream_has_usage_on_the_last_chunk(mistral, fake):
    fake.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)

    chunks = list(mistral.chat.stream(model="claude-sonnet", messages=HI))

    assert "".join(c.data.choices[0].delta.content or "" for c in chunks) == "Salut"
    assert chunks[-1].data.choices[0].finish_reason == "stop"
    assert (chunks[-1].data.usage.prompt_tokens, chunks[-1].data.usage.completion_tokens) == (4, 2)


def test_mistral_sdk_tool_round_trip(mistral, fake):
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]
    first = mistral.chat.complete(model="claude-sonnet", messages=messages, tools=[WEATHER_TOOL])
    [call] = first.choices[0].message.tool_calls

    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": "22C"},
    ]
    second = mistral.chat.complete(model="claude-sonnet", messages=messages, tools=[WEATHER_TOOL])

    assert "22C" in second.choices[0].message.content


def test_mistral_sdk_streamed_tool_call(mistral, fake):
    chunks = list(
        mistral.chat.stream(
            model="claude-sonnet", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL]
        )
    )

    calls = [call for c in chunks for call in c.data.choices[0].delta.tool_calls or []]
    assert [call.function.name for call in calls] == ["get_current_weather"]
    assert chunks[-1].data.choices[0].finish_reason == "tool_calls"


def test_mistral_sdk_image(mistral, fake):
    r = mistral.chat.complete(model="claude-sonnet", messages=image_message())

    assert r.choices[0].message.content == "I see 1 image(s) from base64."


def test_mistral_sdk_overloaded_is_a_503(mistral, fake):
    from mistralai.client.errors import SDKError

    fake.error("overloaded_error")

    with pytest.raises(SDKError) as e:
        mistral.chat.complete(model="claude-sonnet", messages=HI)

    assert e.value.status_code == 503

"""The `openai/<model>` provider end to end: the openai and Mistral SDKs → a real Tollgate → FakeOpenAI."""

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import Tollgate, running
from tests.fakes.openai import FIM_TEXT, FakeOpenAI

KEY = "sk-e2e-openai-master-key-abcdefghijklmnop"
CONFIG = """\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: "os.environ/E2E_OPENAI_API_KEY"
      api_base: {api_base}

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


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("tollgate-openai")
    config = Path(tmp / "litellm_config.yaml")
    config.write_text(CONFIG.format(api_base=openai_server.url, key=KEY))
    with running(config, key=KEY, tmp=tmp, workers=1, env={"E2E_OPENAI_API_KEY": FakeOpenAI.API_KEY}) as server:
        yield server


@pytest.fixture
def fake(openai_server: FakeOpenAI) -> FakeOpenAI:
    openai_server.reset()
    return openai_server


# --- the openai SDK -------------------------------------------------------------------------------


def test_chat(client, fake):
    fake.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert r.choices[0].message.content == "Bonjour!"
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (7, 2, 9)
    sent = fake.last_request
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == f"Bearer {FakeOpenAI.API_KEY}"


def test_stream_with_include_usage(client, fake):
    fake.reply_stream(["Hel", "lo", "!"], prompt_tokens=5, completion_tokens=3)

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    assert [c.choices for c in chunks].count([]) == 1
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_tool_call_round_trip(client, fake):
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]
    calls: dict[int, dict] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL], stream=True
    ):
        for fragment in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += fragment.id or ""
            call["name"] += (fragment.function and fragment.function.name) or ""
            call["arguments"] += (fragment.function and fragment.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish

    assert finish == "tool_calls"
    [call] = calls.values()
    assert call["id"].startswith("call_") and call["name"] == "get_current_weather"
    assert "location" in json.loads(call["arguments"])

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
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])

    assert "22C" in second.choices[0].message.content
    forwarded = fake.last_request.json["messages"]
    assert forwarded[1]["tool_calls"][0]["id"] == call["id"]
    assert forwarded[2]["tool_call_id"] == call["id"]


def test_completions(client, fake):
    r = client.completions.create(model="gpt-4o-mini", prompt="def add(a, b):", suffix="\n", max_tokens=20)

    assert r.object == "text_completion"
    assert r.choices[0].text == FIM_TEXT
    sent = fake.last_request
    assert sent.path == "/v1/completions"
    assert (sent.json["model"], sent.json["suffix"]) == ("gpt-4o-mini", "\n")


def test_embeddings_in_the_sdks_default_base64(client, fake):
    r = client.embeddings.create(model="gpt-4o-mini", input=["one", "two"])  # the SDK asks for base64

    assert len(r.data) == 2 and len(r.data[0].embedding) == 8
    assert isinstance(r.data[0].embedding[0], float)
    assert abs(sum(x * x for x in r.data[0].embedding) - 1) < 1e-3
    assert fake.last_request.json["encoding_format"] == "base64"


def test_a_mid_stream_error_raises(client, fake):
    fake.stream_error(after_chunks=1, message="The model crashed mid-answer")

    stream = client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as e:
        for _ in stream:
            pass
    assert "The model crashed mid-answer" in e.value.message


# --- the Mistral SDK against the openai/ alias ----------------------------------------------------


def test_mistral_sdk_chat_complete(mistral, fake):
    fake.reply("Salut!", prompt_tokens=4, completion_tokens=2)

    r = mistral.chat.complete(model="gpt-4o-mini", messages=HI)

    assert r.choices[0].message.content == "Salut!"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == 6


def test_mistral_sdk_chat_complete_with_a_tool_call_parses_string_content(mistral, fake):
    fake.reply(tool_calls=[{"name": "get_current_weather", "arguments": {"location": "Paris"}}])

    r = mistral.chat.complete(model="gpt-4o-mini", messages=HI, tools=[WEATHER_TOOL])

    message = r.choices[0].message
    assert message.content == ""
    assert message.tool_calls[0].function.name == "get_current_weather"
    assert r.choices[0].finish_reason == "tool_calls"


def test_mistral_sdk_chat_stream(mistral, fake):
    fake.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)

    events = list(mistral.chat.stream(model="gpt-4o-mini", messages=HI))

    assert "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices) == "Salut"
    assert all(e.data.choices for e in events)  # the usage-only chunk Tollgate asked for is not relayed
    assert events[-1].data.choices[0].finish_reason == "stop"

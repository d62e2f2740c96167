"""The `azure/` provider end to end: the openai and Mistral SDKs → a real Tollgate (gunicorn, gevent
workers) → the fake Azure OpenAI resource, which checks the api-key header, the api-version query
and the Entra ID tokens its own token endpoint issued.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import Tollgate, running
from tests.fakes.azure import FakeAzure

KEY = "sk-e2e-azure-master-key-abcdefghijklmnop"
CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o
      api_base: {root}
      api_version: "2024-10-21"
      api_key: os.environ/E2E_AZURE_API_KEY
  - model_name: gpt-4o-entra
    litellm_params:
      model: azure/gpt-4o
      api_base: {root}
      api_version: "2024-10-21"
      tenant_id: {tenant}
      client_id: {client}
      client_secret: os.environ/E2E_AZURE_CLIENT_SECRET
      azure_authority_host: {root}
  - model_name: embed
    litellm_params:
      model: azure/text-embedding-3-small
      api_base: {root}
      api_key: os.environ/E2E_AZURE_API_KEY

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
GPT_4O = (2.5e-6, 10e-6)  # OpenAI's list price per input and output token, which Azure bills
PIXEL = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture(scope="module")
def azure() -> Iterator[FakeAzure]:
    with FakeAzure.running() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(azure: FakeAzure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("tollgate-azure")
    config = Path(tmp / "litellm_config.yaml")
    config.write_text(CONFIG.format(root=azure.root, tenant=FakeAzure.TENANT_ID, client=FakeAzure.CLIENT_ID, key=KEY))
    env = {"E2E_AZURE_API_KEY": FakeAzure.API_KEY, "E2E_AZURE_CLIENT_SECRET": FakeAzure.CLIENT_SECRET}
    with running(config, key=KEY, tmp=tmp, workers=1, env=env) as server:
        yield server


@pytest.fixture
def fake(azure: FakeAzure) -> FakeAzure:
    azure.reset()
    return azure


# --- the openai SDK -------------------------------------------------------------------------------


def test_chat_with_the_api_key_and_its_cost(client, fake):
    fake.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)

    r = raw.parse()
    assert r.choices[0].message.content == "Bonjour!"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (7, 2)
    assert float(raw.headers["x-tollgate-cost"]) == pytest.approx(7 * GPT_4O[0] + 2 * GPT_4O[1])
    sent = fake.last_request
    assert sent.path == "/openai/deployments/gpt-4o/chat/completions"
    assert sent.headers["api-key"] == FakeAzure.API_KEY


def test_chat_with_entra_client_credentials_fetches_one_token(client, fake):
    for _ in range(2):
        r = client.chat.completions.create(model="gpt-4o-entra", messages=HI)
        assert r.choices[0].message.content == "Echo: Hi"

    assert fake.token_requests <= 1  # one per worker process at most; an earlier test may have fetched it
    assert fake.last_request.headers["authorization"].startswith("Bearer ")


def test_stream_with_include_usage(client, fake):
    fake.reply_stream(["Hel", "lo", "!"], prompt_tokens=5, completion_tokens=3)

    chunks = list(
        client.chat.completions.create(model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True})
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello!"
    assert [c.choices for c in chunks].count([]) == 1  # only the usage chunk: Azure's filter chunk is gone
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)


def test_streamed_tool_call_round_trip(client, fake):
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]
    calls: dict[int, dict] = {}
    for chunk in client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=True):
        for fragment in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += fragment.id or ""
            call["name"] += (fragment.function and fragment.function.name) or ""
            call["arguments"] += (fragment.function and fragment.function.arguments) or ""
    [call] = calls.values()
    assert call["name"] == "get_current_weather" and "location" in json.loads(call["arguments"])

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
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])

    assert "22C" in second.choices[0].message.content


def test_image_input(client, fake):
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PIXEL}}]

    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])

    assert r.choices[0].message.content == "Echo: What is this?"
    assert fake.last_request.json["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": PIXEL}}


def test_a_filtered_prompt_raises_bad_request_with_code_content_filter(client, fake):
    fake.filter_prompt(("violence",))

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gpt-4o", messages=HI)

    assert e.value.code == "content_filter"
    assert "violence" in e.value.message


def test_a_filtered_completion_has_finish_reason_content_filter(client, fake):
    fake.reply("I can", finish_reason="content_filter")

    r = client.chat.completions.create(model="gpt-4o", messages=HI)

    assert r.choices[0].finish_reason == "content_filter"


def test_throttling_raises_rate_limit_error(client, fake):
    fake.fail(429, headers={"retry-after": "6"})

    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o", messages=HI)

    assert e.value.response.headers["retry-after"] == "6"


def test_embeddings(client, fake):
    r = client.embeddings.create(model="embed", input=["one", "two"])

    assert len(r.data) == 2 and isinstance(r.data[0].embedding[0], float)
    assert fake.last_request.path == "/openai/deployments/text-embedding-3-small/embeddings"


# --- the Mistral SDK ------------------------------------------------------------------------------


def test_mistral_sdk_chat(mistral, fake):
    fake.reply("Salut!", prompt_tokens=4, completion_tokens=2)

    r = mistral.chat.complete(model="gpt-4o", messages=HI)

    assert r.choices[0].message.content == "Salut!"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, 2)


def test_mistral_sdk_stream(mistral, fake):
    fake.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)

    chunks = list(mistral.chat.stream(model="gpt-4o", messages=HI))

    assert "".join(c.data.choices[0].delta.content or "" for c in chunks if c.data.choices) == "Salut"
    assert all(c.data.choices for c in chunks)  # neither Azure's filter chunk nor the usage-only chunk
    assert chunks[-1].data.choices[0].finish_reason == "stop"


def test_mistral_sdk_tool_round_trip(mistral, fake):
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]
    first = mistral.chat.complete(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])
    [call] = first.choices[0].message.tool_calls

    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": "22C"},
    ]
    second = mistral.chat.complete(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])

    assert "22C" in second.choices[0].message.content


def test_mistral_sdk_content_filter_error(mistral, fake):
    from mistralai.client.errors import SDKError

    fake.filter_prompt()

    with pytest.raises(SDKError) as e:
        mistral.chat.complete(model="gpt-4o", messages=HI)

    assert e.value.status_code == 400
    assert "content_filter" in e.value.body

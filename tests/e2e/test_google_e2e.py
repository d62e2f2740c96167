"""The `vertex_ai/` and `gemini/` providers end to end: the openai and Mistral SDKs → a real Tollgate (gunicorn,
gevent workers, google-auth) → the fake Google on 127.0.0.1, which verifies the service account's JWT at its token
endpoint and the bearer token (or AI Studio key) on every call. Nothing reaches Google.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import Tollgate, running
from tests.fakes.google import GOOGLE_VARIABLES, ISOLATION, FakeGoogle
from tests.fakes.google_auth import ServiceAccountKey

KEY = "sk-e2e-google-master-key-abcdefghijklmnop"
CONFIG = """\
model_list:
  - model_name: gemini-flash
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: tollgate-test
      vertex_location: europe-west4
      vertex_credentials: os.environ/E2E_VERTEX_CREDENTIALS
      api_base: {root}
  - model_name: gemini-3
    litellm_params:
      model: vertex_ai/gemini-3-pro-preview
      vertex_location: global
      vertex_credentials: {credentials_file}
      api_base: {root}
  - model_name: mistral-large
    litellm_params:
      model: vertex_ai/mistral-large@2411
      vertex_location: europe-west4
      vertex_credentials: os.environ/E2E_VERTEX_CREDENTIALS
      api_base: {root}
  - model_name: codestral
    litellm_params:
      model: vertex_ai/codestral@2405
      vertex_credentials: os.environ/E2E_VERTEX_CREDENTIALS
      api_base: {root}
  - model_name: studio-flash
    litellm_params:
      model: gemini/gemini-2.5-flash
      api_key: os.environ/E2E_GEMINI_API_KEY
      api_base: {studio}
  - model_name: vertex-stranger
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_credentials: os.environ/E2E_STRANGER_CREDENTIALS
      api_base: {root}

router_settings:  # each error test must see its own error, not a cooldown left by the one before
  disable_cooldowns: true
  num_retries: 0

general_settings:
  master_key: {key}
"""
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}
FLASH = (0.3e-6, 2.5e-6)
LARGE_2 = (2e-6, 6e-6)
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle.running() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(google: FakeGoogle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("tollgate-google")
    credentials_file = tmp / "service-account.json"
    credentials_file.write_text(json.dumps(google.service_account()))
    config = Path(tmp / "litellm_config.yaml")
    config.write_text(
        CONFIG.format(root=google.root, studio=google.gemini_url, credentials_file=credentials_file, key=KEY)
    )
    env = {
        **ISOLATION,  # google-auth must find nothing real: no metadata server...
        # ...only what the config names.
        "E2E_VERTEX_CREDENTIALS": json.dumps(google.service_account()),
        "E2E_STRANGER_CREDENTIALS": json.dumps(ServiceAccountKey().info(google.token_uri)),
        "E2E_GEMINI_API_KEY": FakeGoogle.API_KEY,
    }
    with running(config, key=KEY, tmp=tmp, workers=1, env=env, unset=GOOGLE_VARIABLES) as server:
        yield server


@pytest.fixture
def fake(google: FakeGoogle) -> FakeGoogle:
    google.reset()
    return google


# --- the openai SDK, Gemini on Vertex ---------------------------------------------------------------


def test_chat_with_usage_and_cost(client, fake):
    fake.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    raw = client.chat.completions.with_raw_response.create(model="gemini-flash", messages=HI)

    r = raw.parse()
    assert r.choices[0].message.content == "Bonjour!"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (7, 2)
    assert float(raw.headers["x-tollgate-cost"]) == pytest.approx(7 * FLASH[0] + 2 * FLASH[1])
    assert fake.last_request.path.endswith(
        "/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert fake.last_request.headers["authorization"].removeprefix("Bearer ") in fake.issued


def test_stream_with_include_usage(client, fake):
    fake.reply_stream(["Sa", "lut", "!"], prompt_tokens=4, completion_tokens=3)

    chunks = list(
        client.chat.completions.create(
            model="gemini-flash", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Salut!"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7


def test_stream_chunks_arrive_as_google_sends_them(client, fake):
    import time

    fake.reply_stream(["one", " two", " three"], delay=0.4)

    arrivals = [
        time.monotonic()
        for chunk in client.chat.completions.create(model="gemini-flash", messages=HI, stream=True)
        if chunk.choices and chunk.choices[0].delta.content
    ]

    assert len(arrivals) == 3 and arrivals[-1] - arrivals[0] > 0.6  # relayed one by one, not buffered


def test_tool_call_round_trip_on_gemini_3(client, fake):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(
        model="gemini-3", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}

    messages += [first.choices[0].message.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "18C, cloudy"}]
    second = client.chat.completions.create(model="gemini-3", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool says: 18C, cloudy"
    assert "/locations/global/" in fake.last_request.path


def test_streamed_tool_call(client, fake):
    stream = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )

    calls = [c for chunk in stream if chunk.choices for c in chunk.choices[0].delta.tool_calls or []]
    assert [c.function.name for c in calls] == ["get_current_weather"]


def test_image_input(client, fake):
    r = client.chat.completions.create(
        model="gemini-flash",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": PNG}}],
            }
        ],
    )

    assert r.choices[0].message.content == "I see an image: image/png (16 bytes)"


def test_a_blocked_prompt_is_a_400_content_filter(client, fake):
    fake.block_prompt()

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="gemini-flash", messages=HI)

    assert e.value.body["code"] == "content_filter"


@pytest.mark.parametrize(
    ("status", "exception", "expected"),
    [
        (400, openai.BadRequestError, 400),
        (403, openai.APIStatusError, 502),
        (429, openai.RateLimitError, 429),
        (503, openai.APIStatusError, 503),
        (504, openai.APIStatusError, 504),
    ],
)
def test_each_error(client, fake, status, exception, expected):
    fake.fail(status)

    with pytest.raises(exception) as e:
        client.chat.completions.create(model="gemini-flash", messages=HI)

    assert e.value.status_code == expected
    assert e.value.body["code"]
    assert "secret-project" not in e.value.message


def test_a_service_account_the_token_endpoint_refuses_is_a_502(client, fake):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="vertex-stranger", messages=HI)

    assert e.value.status_code == 502
    assert e.value.body["code"] == "upstream_auth_error"
    assert "PRIVATE KEY" not in e.value.message


def test_a_mid_stream_error_raises_in_the_sdk(client, fake):
    fake.error_mid_stream(after_chunks=1, status=503, message="The model is overloaded.")

    stream = client.chat.completions.create(model="gemini-flash", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as e:
        for _ in stream:
            pass
    assert "overloaded" in e.value.message


def test_ai_studio_chat_and_stream(client, fake):
    fake.reply("Hello!", prompt_tokens=5, completion_tokens=2)

    raw = client.chat.completions.with_raw_response.create(model="studio-flash", messages=HI)
    chunks = list(client.chat.completions.create(model="studio-flash", messages=HI, stream=True))

    assert raw.parse().choices[0].message.content == "Hello!"
    assert float(raw.headers["x-tollgate-cost"]) == pytest.approx(5 * FLASH[0] + 2 * FLASH[1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: Hi"
    assert fake.last_request.headers["x-goog-api-key"] == FakeGoogle.API_KEY


# --- Mistral on Vertex ------------------------------------------------------------------------------


def test_openai_sdk_on_mistral_large_with_cost(client, fake):
    fake.reply("Salut", prompt_tokens=5, completion_tokens=1)

    raw = client.chat.completions.with_raw_response.create(
        model="mistral-large", messages=HI, stream_options=None, seed=1
    )

    assert raw.parse().choices[0].message.content == "Salut"
    assert float(raw.headers["x-tollgate-cost"]) == pytest.approx(5 * LARGE_2[0] + 1 * LARGE_2[1])
    assert fake.last_request.path.endswith("/publishers/mistralai/models/mistral-large@2411:rawPredict")


def test_mistral_sdk_chat_and_stream(mistral, fake):
    fake.reply("Salut!", prompt_tokens=4, completion_tokens=2)
    r = mistral.chat.complete(model="mistral-large", messages=HI)
    fake.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)
    events = list(mistral.chat.stream(model="mistral-large", messages=HI))

    assert r.choices[0].message.content == "Salut!" and r.usage.total_tokens == 6
    assert "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices) == "Salut"
    assert events[-1].data.usage.completion_tokens == 2


def test_mistral_sdk_tool_round_trip(mistral, fake):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = mistral.chat.complete(model="mistral-large", messages=messages, tools=[WEATHER_TOOL], tool_choice="any")
    call = first.choices[0].message.tool_calls[0]

    messages += [
        first.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": "18C, cloudy"},
    ]
    second = mistral.chat.complete(model="mistral-large", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool returned: 18C, cloudy"


def test_mistral_sdk_on_gemini(mistral, fake):
    fake.reply_stream(["Bon", "jour"], prompt_tokens=3, completion_tokens=2)

    events = list(mistral.chat.stream(model="gemini-flash", messages=HI))

    assert "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices) == "Bonjour"
    assert events[-1].data.usage.total_tokens == 5


def test_mistral_sdk_codestral_fim(mistral, fake):
    r = mistral.fim.complete(model="codestral", prompt="def add(a, b):", suffix="\n")

    assert r.choices[0].message.content == "return a + b"
    assert fake.last_request.path.endswith("/publishers/mistralai/models/codestral@2405:rawPredict")


@pytest.mark.parametrize(("status", "expected"), [(400, 400), (429, 429), (403, 502), (503, 503)])
def test_mistral_sdk_errors(mistral, fake, status, expected):
    from mistralai.client.errors import SDKError

    for _ in range(2):  # the SDK may retry 429/5xx once
        fake.fail(status)
    with pytest.raises(SDKError) as e:
        mistral.chat.complete(model="gemini-flash", messages=HI, retries=None)
    assert e.value.status_code == expected


def test_google_aliases_are_listed(client):
    ids = {m.id for m in client.models.list().data}

    assert {"gemini-flash", "mistral-large", "studio-flash"} <= ids

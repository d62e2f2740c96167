"""The `bedrock/` provider end to end: the openai and Mistral SDKs → a real Tollgate (gunicorn, gevent
workers, boto3) → the fake Bedrock on 127.0.0.1, which checks every request's SigV4 signature.
"""

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.server import Tollgate, running
from tests.fakes.bedrock import AWS_VARIABLES, FakeBedrock, png

KEY = "sk-e2e-bedrock-master-key-abcdefghijklmnop"
CONFIG = """\
model_list:
  - model_name: mistral-large
    litellm_params:
      model: bedrock/mistral.mistral-large-2407-v1:0
      aws_access_key_id: os.environ/E2E_AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/E2E_AWS_SECRET_ACCESS_KEY
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {endpoint}
  - model_name: mistral-7b
    litellm_params:
      model: bedrock/mistral.mistral-7b-instruct-v0:2
      aws_access_key_id: os.environ/E2E_AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/E2E_AWS_SECRET_ACCESS_KEY
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {endpoint}
  - model_name: mistral-large-invoke
    litellm_params:
      model: bedrock/invoke/mistral.mistral-large-2407-v1:0
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {endpoint}
  - model_name: mistral-large-role
    litellm_params:
      model: bedrock/converse/mistral.mistral-large-2407-v1:0
      aws_access_key_id: os.environ/E2E_AWS_ACCESS_KEY_ID
      aws_secret_access_key: os.environ/E2E_AWS_SECRET_ACCESS_KEY
      aws_role_name: arn:aws:iam::123456789012:role/tollgate
      aws_session_name: tollgate-e2e
      aws_sts_endpoint: {endpoint}
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {endpoint}
  - model_name: mistral-large-bad-secret
    litellm_params:
      model: bedrock/mistral.mistral-large-2407-v1:0
      aws_access_key_id: os.environ/E2E_AWS_ACCESS_KEY_ID
      aws_secret_access_key: not-the-right-secret-0000
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {endpoint}
      timeout: 10

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
LARGE_PRICE = (2e-6, 6e-6)  # Mistral Large 2 on Bedrock, per input and output token


@pytest.fixture(scope="module")
def bedrock() -> Iterator[FakeBedrock]:
    with FakeBedrock.running() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(bedrock: FakeBedrock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("tollgate-bedrock")
    config = Path(tmp / "litellm_config.yaml")
    config.write_text(CONFIG.format(endpoint=bedrock.root, key=KEY))
    env = {
        # boto3 must find nothing real: no metadata service, no shared files, no ambient keys...
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        # ...except what the config names, and the default chain's keys for the entry without any.
        "E2E_AWS_ACCESS_KEY_ID": FakeBedrock.ACCESS_KEY_ID,
        "E2E_AWS_SECRET_ACCESS_KEY": FakeBedrock.SECRET_ACCESS_KEY,
        "AWS_ACCESS_KEY_ID": FakeBedrock.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FakeBedrock.SECRET_ACCESS_KEY,
    }
    with running(config, key=KEY, tmp=tmp, workers=1, env=env, unset=AWS_VARIABLES) as server:
        yield server


@pytest.fixture
def fake(bedrock: FakeBedrock) -> FakeBedrock:
    bedrock.reset()
    return bedrock


# --- the openai SDK -------------------------------------------------------------------------------


def test_chat_with_usage_and_cost(client, fake):
    fake.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    raw = client.chat.completions.with_raw_response.create(model="mistral-large", messages=HI)

    r = raw.parse()
    assert r.choices[0].message.content == "Bonjour!"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (7, 2)
    assert float(raw.headers["x-tollgate-cost"]) == pytest.approx(7 * LARGE_PRICE[0] + 2 * LARGE_PRICE[1])
    assert fake.signers == [FakeBedrock.ACCESS_KEY_ID]
    assert fake.last_request.path == "/model/mistral.mistral-large-2407-v1:0/converse"


def test_stream_with_include_usage(client, fake):
    fake.reply_stream(["Sa", "lut", "!"], prompt_tokens=4, completion_tokens=3)

    chunks = list(
        client.chat.completions.create(
            model="mistral-large", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Salut!"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7
    assert fake.last_request.path.endswith("/converse-stream")


def test_stream_chunks_arrive_as_bedrock_sends_them(client, fake):
    fake.reply_stream(["one", " two", " three"], delay=0.4)

    import time

    stream = client.chat.completions.create(model="mistral-large", messages=HI, stream=True)
    arrivals = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 3
    assert arrivals[-1] - arrivals[0] > 0.6  # relayed one by one, not buffered to the end


def test_tool_call_round_trip(client, fake):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(
        model="mistral-large", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}

    messages += [first.choices[0].message.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "18C, cloudy"}]
    second = client.chat.completions.create(model="mistral-large", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool says: 18C, cloudy"


def test_streamed_tool_call(client, fake):
    stream = client.chat.completions.create(
        model="mistral-large",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )

    calls = [c for chunk in stream if chunk.choices for c in chunk.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "get_current_weather"
    assert len(calls[0].id) == 9


def test_image_input_from_a_data_url(client, fake):
    image = png(4, 4)
    url = "data:image/png;base64," + base64.b64encode(image).decode()

    r = client.chat.completions.create(
        model="mistral-large",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}],
            }
        ],
    )

    assert r.choices[0].message.content == f"I see an image: png ({len(image)} bytes)"


def test_image_input_fetched_from_a_url(client, fake):
    url = fake.image_url("chart.png", png(8, 8))

    r = client.chat.completions.create(
        model="mistral-large",
        messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
    )

    assert r.choices[0].message.content.startswith("I see an image: png")


def test_a_too_large_image_is_a_400(client, fake):
    url = fake.image_url("huge.png", png(padding=4_000_000))

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="mistral-large",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
        )
    assert "3.75 MB" in e.value.message


def test_mistral_7b_through_invoke_model(client, fake):
    fake.reply_stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)

    chunks = list(
        client.chat.completions.create(
            model="mistral-7b", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-1].usage.total_tokens == 7
    assert fake.last_request.path == "/model/mistral.mistral-7b-instruct-v0:2/invoke-with-response-stream"
    assert fake.last_request.json["prompt"] == "<s>[INST] Hi [/INST]"


def test_forced_invoke_with_boto3s_default_credentials(client, fake):
    r = client.chat.completions.create(model="mistral-large-invoke", messages=HI)

    assert r.choices[0].message.content == "Echo: Hi"
    assert fake.last_request.path == "/model/mistral.mistral-large-2407-v1:0/invoke"
    assert fake.signers == [FakeBedrock.ACCESS_KEY_ID]


def test_assumed_role(client, fake):
    r = client.chat.completions.create(model="mistral-large-role", messages=HI)

    assert r.choices[0].message.content == "Echo: Hi"
    assert fake.signers[-1].startswith("ASIA")  # signed with the role's temporary keys


@pytest.mark.parametrize(
    ("error_type", "exception", "status"),
    [
        ("ValidationException", openai.BadRequestError, 400),
        ("AccessDeniedException", openai.APIStatusError, 502),
        ("UnrecognizedClientException", openai.APIStatusError, 502),
        ("ThrottlingException", openai.RateLimitError, 429),
        ("ModelNotReadyException", openai.APIStatusError, 503),
        ("ServiceUnavailableException", openai.APIStatusError, 503),
        ("ModelTimeoutException", openai.APIStatusError, 504),
    ],
)
def test_each_error(client, fake, error_type, exception, status):
    fake.error(error_type, "arn:aws:iam::123456789012:user/ops said no")

    with pytest.raises(exception) as e:
        client.chat.completions.create(model="mistral-large", messages=HI)

    assert e.value.status_code == status
    assert e.value.body["code"]
    if status == 502:
        assert "123456789012" not in e.value.message  # credential errors name the problem, not the account


def test_a_wrong_secret_is_a_502_that_does_not_leak_it(client, fake):
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="mistral-large-bad-secret", messages=HI)

    assert e.value.status_code == 502
    assert "secret access key does not match" in e.value.message
    assert "not-the-right-secret" not in e.value.message


def test_a_mid_stream_exception_raises_in_the_sdk(client, fake):
    fake.error_mid_stream("modelStreamErrorException", after_chunks=1, message="The model crashed")

    stream = client.chat.completions.create(model="mistral-large", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as e:
        for _ in stream:
            pass
    assert "The model crashed" in e.value.message


# --- the Mistral SDK ------------------------------------------------------------------------------


def test_mistral_sdk_chat(mistral, fake):
    fake.reply("Salut!", prompt_tokens=4, completion_tokens=2)

    r = mistral.chat.complete(model="mistral-large", messages=HI)

    assert r.choices[0].message.content == "Salut!"
    assert r.usage.total_tokens == 6


def test_mistral_sdk_stream_has_usage_on_the_last_chunk(mistral, fake):
    fake.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)

    events = list(mistral.chat.stream(model="mistral-large", messages=HI))

    assert "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices) == "Salut"
    assert events[-1].data.usage.completion_tokens == 2
    assert events[-1].data.choices[0].finish_reason == "stop"


def test_mistral_sdk_tool_round_trip(mistral, fake):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = mistral.chat.complete(model="mistral-large", messages=messages, tools=[WEATHER_TOOL], tool_choice="any")
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"

    messages += [
        first.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": "18C, cloudy"},
    ]
    second = mistral.chat.complete(model="mistral-large", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "The tool says: 18C, cloudy"


def test_mistral_sdk_streamed_tool_call(mistral, fake):
    events = list(
        mistral.chat.stream(
            model="mistral-large", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL]
        )
    )

    calls = [c for e in events if e.data.choices for c in e.data.choices[0].delta.tool_calls or []]
    assert [c.function.name for c in calls] == ["get_current_weather"]
    assert events[-1].data.choices[0].finish_reason == "tool_calls"


def test_mistral_sdk_image(mistral, fake):
    image = png(2, 2)
    url = "data:image/png;base64," + base64.b64encode(image).decode()

    r = mistral.chat.complete(
        model="mistral-large",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "What?"}, {"type": "image_url", "image_url": url}]}
        ],
    )

    assert r.choices[0].message.content == f"I see an image: png ({len(image)} bytes)"


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("ValidationException", 400),
        ("ThrottlingException", 429),
        ("AccessDeniedException", 502),
        ("ServiceUnavailableException", 503),
    ],
)
def test_mistral_sdk_errors(mistral, fake, error_type, status):
    from mistralai.client.errors import SDKError

    for _ in range(2):  # the SDK may retry 429/5xx once
        fake.error(error_type)
    with pytest.raises(SDKError) as e:
        mistral.chat.complete(model="mistral-large", messages=HI, retries=None)
    assert e.value.status_code == status


# --- one worker, many calls -----------------------------------------------------------------------


def test_concurrent_streams_share_the_worker_without_queueing(gateway, fake):
    """gevent lets one worker wait on many Bedrock streams at once; the client's pool must not serialise them."""
    import concurrent.futures
    import time

    calls = 20
    for _ in range(calls):
        fake.reply_stream(["a", "b"], delay=0.5)

    def one(_: int) -> str:
        with openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0, timeout=30) as sdk:
            stream = sdk.chat.completions.create(model="mistral-large", messages=HI, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(one, range(calls)))
    elapsed = time.monotonic() - started

    assert answers == ["ab"] * calls
    assert elapsed < 10  # ~1 s when they overlap; one at a time would take 20 s (2 cores under load: wide margin)


def test_bedrock_aliases_are_listed(client):
    ids = {m.id for m in client.models.list().data}

    assert {"mistral-large", "mistral-7b", "mistral-large-role"} <= ids

"""The OpenAI SDK against a real Tollgate, with and without /v1 in base_url."""

import json

import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}


@pytest.fixture(params=["/v1", ""], ids=["with-v1", "without-v1"])
def client(request, tollgate, fake_mistral) -> openai.OpenAI:
    return openai.OpenAI(base_url=tollgate.url + request.param, api_key=tollgate.key, max_retries=0, timeout=20)


def test_chat_returns_the_providers_answer(client, fake_mistral):
    fake_mistral.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = client.chat.completions.create(model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}])

    assert r.choices[0].message.content == "Bonjour!"
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (7, 2, 9)
    sent = fake_mistral.last_request
    assert sent.json["model"] == "mistral-small-latest"
    assert sent.headers["authorization"] == "Bearer fake-mistral-key"


def test_stream_with_include_usage_ends_with_a_usage_chunk(client, fake_mistral):
    fake_mistral.reply_stream(["Hel", "lo", "!"], prompt_tokens=5, completion_tokens=3)

    chunks = list(
        client.chat.completions.create(
            model="mistral-small-latest",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)
    assert all(c.usage is None for c in chunks[:-1])
    assert "stream_options" not in fake_mistral.last_request.json  # Mistral would refuse it with 422


def test_tool_call_and_tool_result_round_trip(client, fake_mistral):
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]
    first = client.chat.completions.create(
        model="mistral-small-latest", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_current_weather"
    assert "location" in json.loads(call.function.arguments)

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temperature": "22C"}'})
    second = client.chat.completions.create(model="mistral-small-latest", messages=messages, tools=[WEATHER_TOOL])

    assert "22C" in second.choices[0].message.content
    forwarded = fake_mistral.last_request.json["messages"][1]
    assert forwarded["tool_calls"][0]["id"] == call.id
    assert "index" not in forwarded["tool_calls"][0]


def test_tool_choice_required_becomes_mistrals_any(client, fake_mistral):
    r = client.chat.completions.create(
        model="mistral-small-latest",
        messages=[{"role": "user", "content": "Hi"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        seed=42,
    )

    assert r.choices[0].message.tool_calls
    sent = fake_mistral.last_request.json
    assert (sent["tool_choice"], sent["random_seed"]) == ("any", 42)
    assert "seed" not in sent


def test_image_content_parts_reach_the_provider(client, fake_mistral):
    image = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    r = client.chat.completions.create(
        model="mistral-small-latest",
        max_tokens=300,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in this image?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    )

    assert r.choices[0].message.content
    parts = fake_mistral.last_request.json["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": image}}


def test_text_completions_use_codestral_fim(client, fake_mistral):
    r = client.completions.create(model="codestral-text", prompt="def add(a, b):", suffix="\n", max_tokens=20)

    assert r.object == "text_completion"
    assert r.choices[0].text == "return a + b"
    sent = fake_mistral.last_request
    assert sent.path == "/v1/fim/completions"
    assert (sent.json["prompt"], sent.json["suffix"]) == ("def add(a, b):", "\n")


def test_embeddings_come_back_as_floats_from_base64(client, fake_mistral):
    r = client.embeddings.create(model="mistral-embed", input=["one", "two"])  # the SDK asks for base64

    assert len(r.data) == 2 and len(r.data[0].embedding) == 8
    assert isinstance(r.data[0].embedding[0], float)
    assert r.usage.prompt_tokens > 0
    assert "encoding_format" not in fake_mistral.last_request.json


def test_models_list_and_retrieve(client):
    ids = {m.id for m in client.models.list()}
    assert {"mistral-small-latest", "mistral-nemo", "codestral-latest", "mistral-embed"} <= ids
    assert client.models.retrieve("mistral-nemo").id == "mistral-nemo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_unknown_model_is_a_404_not_found(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.body["code"] == "model_not_found"


def test_wrong_key_is_a_401(tollgate):
    client = openai.OpenAI(base_url=tollgate.url + "/v1", api_key="sk-wrong-key-000000000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}])


def test_upstream_rate_limit_is_a_429_with_the_providers_message(client, fake_mistral):
    fake_mistral.fail(429)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}])
    assert "Rate limit exceeded" in e.value.message


def test_upstream_server_error_is_a_502(client, fake_mistral):
    fake_mistral.fail(500)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 502


def test_upstream_timeout_is_a_504(client, fake_mistral):
    fake_mistral.hang(3)
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model="slow-model", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 504


def test_stream_cut_midway_raises_instead_of_ending_quietly(client, fake_mistral):
    fake_mistral.cut_stream(2)
    stream = client.chat.completions.create(
        model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass

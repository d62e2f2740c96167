"""The current Mistral SDK (`from mistralai.client import Mistral`) against a real Tollgate."""

import pytest
from mistralai.client import Mistral

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


@pytest.fixture
def client(tollgate, fake_mistral) -> Mistral:
    return Mistral(api_key=tollgate.key, server_url=tollgate.url, timeout_ms=20000)


def test_chat_complete(client, fake_mistral):
    fake_mistral.reply("Salut!", prompt_tokens=4, completion_tokens=2)

    r = client.chat.complete(
        model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}], safe_prompt=True, random_seed=7
    )

    assert r.choices[0].message.content == "Salut!"
    assert r.usage.total_tokens == 6
    sent = fake_mistral.last_request.json
    assert (sent["safe_prompt"], sent["random_seed"]) == (True, 7)


def test_chat_stream_carries_usage_on_the_last_chunk(client, fake_mistral):
    fake_mistral.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)

    events = list(client.chat.stream(model="mistral-nemo", messages=[{"role": "user", "content": "Hi"}]))

    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert text == "Salut"
    assert events[-1].data.usage.completion_tokens == 2


def test_tool_call_round_trip(client, fake_mistral):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.complete(
        model="mistral-small-latest", messages=messages, tools=[WEATHER_TOOL], tool_choice="any"
    )
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_current_weather"

    messages += [
        first.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": "18C, cloudy"},
    ]
    second = client.chat.complete(model="mistral-small-latest", messages=messages, tools=[WEATHER_TOOL])

    assert "18C" in second.choices[0].message.content
    assert "index" not in fake_mistral.last_request.json["messages"][1]["tool_calls"][0]


def test_fim_complete(client, fake_mistral):
    r = client.fim.complete(model="codestral-latest", prompt="def add(a, b):", suffix="\n\nprint(add(1, 2))")

    assert r.choices[0].message.content == "return a + b"
    assert fake_mistral.last_request.path == "/v1/fim/completions"


def test_fim_stream(client, fake_mistral):
    events = list(client.fim.stream(model="codestral-latest", prompt="def add(a, b):"))

    assert "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)


def test_embeddings_create(client):
    r = client.embeddings.create(model="mistral-embed", inputs=["hello", "world"])

    assert len(r.data) == 2 and len(r.data[0].embedding) == 8
    assert r.id


def test_models_list_parses_every_card(client):
    models = client.models.list()

    ids = {m.id for m in models.data}
    assert {"mistral-small-latest", "codestral-latest", "mistral-embed"} <= ids
    codestral = next(m for m in models.data if m.id == "codestral-latest")
    assert codestral.capabilities.completion_fim is True


def test_wrong_key_raises(tollgate):
    from mistralai.client.errors import SDKError

    client = Mistral(api_key="sk-wrong-0000000000000000", server_url=tollgate.url)
    with pytest.raises(SDKError) as e:
        client.chat.complete(model="mistral-small-latest", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 401

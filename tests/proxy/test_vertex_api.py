"""The `vertex_ai/` provider through the views, against the fake Google on 127.0.0.1: Gemini and Mistral models,
bearer tokens from the fake token endpoint, Google's error shapes, usage rows with the right cost."""

import json

import pytest

from billing.models import UsageRecord
from tests.conftest import HI
from tests.fakes import google_answers
from tests.proxy.test_chat_api import WEATHER_TOOL, events, post

pytest_plugins = ["tests.fakes.google_fixtures"]

FLASH = (0.3e-6, 2.5e-6)  # Gemini 2.5 Flash per input and output token
LARGE_2 = (2e-6, 6e-6)  # Mistral Large 24.11 on Vertex


def text_of(payloads: list) -> str:
    return "".join(
        (p["choices"][0]["delta"].get("content") or "") for p in payloads if isinstance(p, dict) and p.get("choices")
    )


@pytest.fixture
def flash(fake_google, vertex_for):
    return vertex_for(fake_google)


# --- Gemini -----------------------------------------------------------------------------------------


def test_chat_is_openai_shaped_with_usage_cost_and_a_usage_row(client, auth, fake_google, flash):
    fake_google.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = post(client, auth, {"model": "flash", "messages": HI, "max_tokens": 50, "temperature": 0.2})

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    cost = 7 * FLASH[0] + 2 * FLASH[1]
    assert float(r["x-tollgate-cost"]) == pytest.approx(cost)
    row = UsageRecord.objects.get(request_id=r["x-request-id"])
    assert float(row.cost) == pytest.approx(cost)
    sent = fake_google.last_request
    assert (
        sent.path
        == "/v1/projects/tollgate-test/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert sent.headers["authorization"] == f"Bearer {fake_google.bearer_tokens[-1]}"
    assert sent.json["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2}


def test_the_token_is_minted_once_for_many_calls(client, auth, fake_google, flash):
    for _ in range(3):
        assert post(client, auth, {"model": "flash", "messages": HI}).status_code == 200

    assert fake_google.token_requests == 1
    assert len(set(fake_google.bearer_tokens)) == 1


def test_stream_relays_each_event_with_usage_on_the_last_chunk(client, auth, fake_google, flash):
    fake_google.reply_stream(["Sa", "lut", "!"], prompt_tokens=4, completion_tokens=3)

    r = post(
        client, auth, {"model": "flash", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    )

    payloads = events(r)
    assert text_of(payloads) == "Salut!"
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["choices"] == [] and payloads[-2]["usage"]["total_tokens"] == 7
    assert fake_google.last_request.path.endswith(":streamGenerateContent")  # the fake refuses it without alt=sse
    assert UsageRecord.objects.get().completion_tokens == 3


def test_tool_round_trip_on_gemini_3_keeps_the_thought_signature(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="pro3", model="vertex_ai/gemini-3-pro-preview")
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]

    first = post(
        client, auth, {"model": "pro3", "messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )
    message = first.json()["choices"][0]["message"]
    call = message["tool_calls"][0]
    assert first.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}

    messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": "18C, cloudy"}]
    second = post(client, auth, {"model": "pro3", "messages": messages, "tools": [WEATHER_TOOL]})

    assert second.status_code == 200, second.content
    assert second.json()["choices"][0]["message"]["content"] == "The tool says: 18C, cloudy"


def test_streamed_tool_call(client, auth, fake_google, flash):
    r = post(
        client,
        auth,
        {
            "model": "flash",
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [WEATHER_TOOL],
            "stream": True,
        },
    )

    payloads = events(r)
    calls = [
        c
        for p in payloads
        if isinstance(p, dict) and p.get("choices")
        for c in p["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert [c["function"]["name"] for c in calls] == ["get_weather"]
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_image_input(client, auth, fake_google, flash):
    url = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUg=="
    content = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}]

    r = post(client, auth, {"model": "flash", "messages": [{"role": "user", "content": content}]})

    assert r.json()["choices"][0]["message"]["content"] == "I see an image: image/png (16 bytes)"


def test_a_blocked_prompt_is_a_400_content_filter(client, auth, fake_google, flash):
    fake_google.block_prompt("SAFETY")

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.status_code == 400
    assert r.json()["error"]["code"] == "content_filter"


def test_a_blocked_streamed_prompt_is_a_400_before_the_stream_starts(client, auth, fake_google, flash):
    fake_google.block_prompt("PROHIBITED_CONTENT")

    r = post(client, auth, {"model": "flash", "messages": HI, "stream": True})

    assert r.status_code == 400
    assert r.json()["error"]["code"] == "content_filter"


def test_an_answer_stopped_by_safety_finishes_with_content_filter(client, auth, fake_google, flash):
    fake_google.reply("I can't", finish_reason="SAFETY")

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.json()["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (400, 400, "invalid_argument"),
        (401, 502, "upstream_auth_error"),
        (403, 502, "upstream_auth_error"),
        (404, 404, "not_found"),
        (429, 429, "resource_exhausted"),
        (500, 502, "internal"),
        (503, 503, "unavailable"),
        (504, 504, "upstream_timeout"),
    ],
)
def test_google_errors_become_the_openai_envelope(client, auth, fake_google, flash, status, expected, code):
    fake_google.fail(status)

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.status_code == expected
    assert r.json()["error"]["code"] == code
    assert "secret-project" not in r.content.decode()  # PERMISSION_DENIED's resource is not repeated


def test_an_error_event_mid_stream_ends_the_stream_with_an_error(client, auth, fake_google, flash):
    fake_google.error_mid_stream(after_chunks=1, status=503, message="The model is overloaded.")

    r = post(client, auth, {"model": "flash", "messages": HI, "stream": True})

    payloads = events(r)
    assert payloads[-1]["error"]["message"].endswith("The model is overloaded.")
    assert payloads[-1]["error"]["status"] == 503


def test_the_fake_refuses_what_gemini_refuses(client, auth, fake_google, flash):
    """The translation drops what Gemini would reject (additionalProperties, strict, $schema)."""
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {"x": {"type": ["string", "null"]}},
                "additionalProperties": False,
            },
        },
    }

    r = post(client, auth, {"model": "flash", "messages": HI, "tools": [tool], "user": "u-1", "stream_options": None})

    assert r.status_code == 200, r.content


def test_embeddings_through_predict(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="embed", model="vertex_ai/text-embedding-005")

    r = client.post(
        "/v1/embeddings",
        data=json.dumps({"model": "embed", "input": ["one two", "three"], "dimensions": 4}),
        content_type="application/json",
        **auth,
    )

    assert r.status_code == 200, r.content
    assert [len(d["embedding"]) for d in r.json()["data"]] == [4, 4]
    assert r.json()["usage"]["prompt_tokens"] == 3
    assert fake_google.last_request.path.endswith("/models/text-embedding-005:predict")


# --- Mistral on Vertex -------------------------------------------------------------------------------


def test_mistral_chat_through_raw_predict(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="large", model="vertex_ai/mistral-large@2411")
    fake_google.reply("Salut", prompt_tokens=5, completion_tokens=1)

    r = post(client, auth, {"model": "large", "messages": HI, "stream_options": {"include_usage": True}, "seed": 3})

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "Salut"
    assert float(r["x-tollgate-cost"]) == pytest.approx(5 * LARGE_2[0] + 1 * LARGE_2[1])
    sent = fake_google.last_request
    assert sent.path.endswith("/publishers/mistralai/models/mistral-large@2411:rawPredict")
    assert sent.json["model"] == "mistral-large" and sent.json["random_seed"] == 3
    assert "stream_options" not in sent.json


def test_mistral_stream_through_stream_raw_predict(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="large", model="vertex_ai/mistral-large@2411")
    fake_google.reply_stream(["Sa", "lut"], prompt_tokens=4, completion_tokens=2)

    r = post(client, auth, {"model": "large", "messages": HI, "stream": True})

    payloads = events(r)
    assert text_of(payloads) == "Salut"
    assert payloads[-2]["usage"]["completion_tokens"] == 2  # Mistral's last chunk keeps its usage
    assert fake_google.last_request.path.endswith(":streamRawPredict")


def test_mistral_tool_round_trip(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="large", model="vertex_ai/mistral-large@2411")
    messages = [{"role": "user", "content": "weather in Paris?"}]

    first = post(
        client, auth, {"model": "large", "messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )
    message = first.json()["choices"][0]["message"]
    call = message["tool_calls"][0]
    messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": "18C"}]
    second = post(client, auth, {"model": "large", "messages": messages, "tools": [WEATHER_TOOL]})

    assert second.status_code == 200, second.content
    assert second.json()["choices"][0]["message"]["content"] == "The tool returned: 18C"


def test_codestral_fim(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="codestral", model="vertex_ai/codestral@2405")

    r = post(
        client, auth, {"model": "codestral", "prompt": "def add(a, b):", "suffix": "\n"}, path="/v1/fim/completions"
    )

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "return a + b"
    assert fake_google.last_request.json == {
        "model": "codestral",
        "prompt": "def add(a, b):",
        "suffix": "\n",
        "stream": False,
    }


def test_fim_on_a_chat_model_is_a_400(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, alias="large", model="vertex_ai/mistral-large@2411")

    r = post(client, auth, {"model": "large", "prompt": "def"}, path="/v1/fim/completions")

    assert r.status_code == 400


def test_google_error_bodies_are_shaped_as_google_sends_them():
    assert google_answers.error(429)["error"]["status"] == "RESOURCE_EXHAUSTED"

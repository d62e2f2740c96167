"""The `gemini/` provider (Google AI Studio) through the views: the API key in x-goog-api-key, the same Gemini
translation as Vertex, embeddings through batchEmbedContents, and a wrong key named as such."""

import json

import pytest

from billing.models import UsageRecord
from tests.conftest import HI
from tests.proxy.test_chat_api import WEATHER_TOOL, events, post

pytest_plugins = ["tests.fakes.google_fixtures"]

FLASH = (0.3e-6, 2.5e-6)


@pytest.fixture
def studio(fake_google, gemini_for):
    return gemini_for(fake_google)


def test_chat_sends_the_key_in_a_header_and_is_priced(client, auth, fake_google, studio):
    fake_google.reply("Hello!", prompt_tokens=6, completion_tokens=2)

    r = post(client, auth, {"model": "gemini", "messages": HI})

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "Hello!"
    assert float(r["x-tollgate-cost"]) == pytest.approx(6 * FLASH[0] + 2 * FLASH[1])
    sent = fake_google.last_request
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == fake_google.API_KEY
    assert "authorization" not in sent.headers


def test_stream_with_usage(client, auth, fake_google, studio):
    fake_google.reply_stream(["He", "llo"], prompt_tokens=3, completion_tokens=2)

    r = post(client, auth, {"model": "gemini", "messages": HI, "stream": True})

    payloads = events(r)
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in payloads[:-1] if p["choices"]) == "Hello"
    assert payloads[-2]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert UsageRecord.objects.get().prompt_tokens == 3


def test_tool_round_trip(client, auth, fake_google, studio):
    messages = [{"role": "user", "content": "weather in Paris?"}]
    first = post(client, auth, {"model": "gemini", "messages": messages, "tools": [WEATHER_TOOL]})
    message = first.json()["choices"][0]["message"]

    messages += [message, {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "sunny"}]
    second = post(client, auth, {"model": "gemini", "messages": messages, "tools": [WEATHER_TOOL]})

    assert second.json()["choices"][0]["message"]["content"] == "The tool says: sunny"


def test_a_wrong_key_is_a_502_naming_the_key_without_showing_it(client, auth, fake_google, gemini_for):
    gemini_for(fake_google, api_key="AIza-wrong-key-123")

    r = post(client, auth, {"model": "gemini", "messages": HI})

    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_auth_error"
    assert "API key" in r.json()["error"]["message"] and "AIza-wrong" not in r.content.decode()


def test_the_key_from_gemini_api_key(client, auth, fake_google, gemini_for, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", fake_google.API_KEY)
    gemini_for(fake_google, api_key="")

    assert post(client, auth, {"model": "gemini", "messages": HI}).status_code == 200


def test_no_key_at_all_is_a_500_saying_so(client, auth, fake_google, gemini_for):
    gemini_for(fake_google, api_key="")

    r = post(client, auth, {"model": "gemini", "messages": HI})

    assert r.status_code == 500 and "GEMINI_API_KEY" in r.json()["error"]["message"]


def test_embeddings_through_batch_embed_contents(client, auth, fake_google, gemini_for):
    gemini_for(fake_google, alias="embed", model="gemini/gemini-embedding-001")

    r = client.post(
        "/v1/embeddings",
        data=json.dumps({"model": "embed", "input": "hello world"}),
        content_type="application/json",
        **auth,
    )

    assert r.status_code == 200, r.content
    assert len(r.json()["data"]) == 1 and r.json()["usage"]["prompt_tokens"] > 0
    assert fake_google.last_request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"

"""Chat completions through the view, against deployments served by the fake Mistral on 127.0.0.1."""

import json
import logging
from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import ModelPrice, UsageRecord
from proxy import http
from tests.conftest import HI, MASTER_KEY
from tests.fakes.mistral_schema import CHAT_FIELDS, MESSAGE_FIELDS, TOOL_CALL_FIELDS

CHAT = "/v1/chat/completions"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def post(client, auth, body, path=CHAT, **headers):
    return client.post(path, data=json.dumps(body), content_type="application/json", **auth, **headers)


def events(response) -> list:
    """The parsed `data:` payloads of an SSE answer; "[DONE]" stays a string."""
    raw = b"".join(response.streaming_content).decode()
    assert raw.endswith("\n\n")
    payloads = []
    for block in raw.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


@pytest.fixture
def small(fake_mistral, deployment_for):
    return deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest")


# --- JSON answers ---------------------------------------------------------------------------------


def test_chat_answer_has_the_shape_every_sdk_parses(client, auth, fake_mistral, small):
    fake_mistral.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = post(client, auth, {"model": "small", "messages": HI})

    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert (message["role"], message["content"]) == ("assistant", "Bonjour!")
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert len(r["x-request-id"]) >= 16
    assert r["x-tollgate-deployment"] == str(small.pk)


def test_tool_call_answer_has_string_content(client, auth, fake_mistral, small):
    fake_mistral.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])

    r = post(client, auth, {"model": "small", "messages": HI, "tools": [WEATHER_TOOL]})

    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == ""
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert choice["finish_reason"] == "tool_calls"


def test_model_length_finish_reason_is_reported_as_length(client, auth, fake_mistral, small):
    fake_mistral.reply("cut sho", finish_reason="model_length")

    assert post(client, auth, {"model": "small", "messages": HI}).json()["choices"][0]["finish_reason"] == "length"


def test_a_callers_request_id_is_echoed(client, auth, fake_mistral, small):
    r = post(client, auth, {"model": "small", "messages": HI}, HTTP_X_REQUEST_ID="trace-42.a")

    assert r["x-request-id"] == "trace-42.a"


def test_an_unsafe_request_id_is_replaced(client, auth, fake_mistral, small):
    r = post(client, auth, {"model": "small", "messages": HI}, HTTP_X_REQUEST_ID="bad id\twith spaces")

    assert r["x-request-id"] != "bad id\twith spaces"
    assert r["x-request-id"].isalnum()


def test_each_request_gets_its_own_id(client, auth, fake_mistral, small):
    first = post(client, auth, {"model": "small", "messages": HI})
    second = post(client, auth, {"model": "small", "messages": HI})

    assert first["x-request-id"] != second["x-request-id"]


def test_mistral_receives_the_provider_model_and_only_fields_it_accepts(client, auth, fake_mistral, small):
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body = {
        "model": "small",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?", "name": "ann"},
            {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []},
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "seed": 7,
        "max_completion_tokens": 50,
        "user": "customer-1",
        "logit_bias": {"50256": -100},
        "stream_options": {"include_usage": True},
        "safe_prompt": False,
        "temperature": 0.1,
    }

    r = post(client, auth, body)

    assert r.status_code == 200, r.content  # the fake answers 422 to any field Mistral refuses
    sent = fake_mistral.last_request
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer fake-mistral-key"
    payload = sent.json
    assert payload["model"] == "mistral-small-latest"
    assert set(payload) <= CHAT_FIELDS
    assert not {"user", "logit_bias", "stream_options", "seed", "max_completion_tokens"} & set(payload)
    assert (payload["random_seed"], payload["max_tokens"], payload["tool_choice"]) == (7, 50, "any")
    assert payload["safe_prompt"] is False
    assert [m["role"] for m in payload["messages"]] == ["system", "user", "assistant", "tool"]
    assert all(set(m) <= MESSAGE_FIELDS for m in payload["messages"])
    assert "name" not in payload["messages"][1]
    assert payload["messages"][2]["content"] == ""
    assert set(payload["messages"][2]["tool_calls"][0]) <= TOOL_CALL_FIELDS


def test_chat_works_without_v1_in_the_path(client, auth, fake_mistral, small):
    fake_mistral.reply("root")

    r = post(client, auth, {"model": "small", "messages": HI}, path="/chat/completions")

    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "root"


def test_hot_path_query_count_is_bounded(client, auth, fake_mistral, small, django_assert_max_num_queries):
    post(client, auth, {"model": "small", "messages": HI})  # loads the deployment table

    # The deployment table's fingerprint (tests cache it for 0 s), the key generation, the usage row.
    with django_assert_max_num_queries(3):
        assert post(client, auth, {"model": "small", "messages": HI}).status_code == 200


# --- streams --------------------------------------------------------------------------------------


def test_stream_relays_chunks_in_order_with_mistrals_usage_on_the_last_one(client, auth, fake_mistral, small):
    fake_mistral.reply_stream(["Hel", "lo", "!"], prompt_tokens=5, completion_tokens=3)

    r = post(client, auth, {"model": "small", "messages": HI, "stream": True})

    assert r.status_code == 200
    assert r["Content-Type"] == "text/event-stream"
    assert r["x-tollgate-deployment"] == str(small.pk)
    assert r["x-request-id"]
    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello!"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:4]] == ["Hel", "lo", "!"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert all("usage" not in c for c in chunks[:-1])
    assert "stream_options" not in fake_mistral.last_request.json


def test_stream_with_include_usage_ends_with_a_usage_only_chunk(client, auth, fake_mistral, small):
    fake_mistral.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    r = post(
        client, auth, {"model": "small", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    )

    payloads = events(r)
    assert r["Content-Type"] == "text/event-stream"
    assert payloads[-1] == "[DONE]"
    final, earlier = payloads[-2], payloads[:-2]
    assert final["choices"] == []
    assert final["usage"] == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}
    assert final["id"] == earlier[-1]["id"]
    assert all(c["choices"] and c.get("usage") is None for c in earlier)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in earlier) == "Hello"
    assert "stream_options" not in fake_mistral.last_request.json  # Mistral would refuse it with 422


def test_stream_raw_bytes_are_sse_framed(client, auth, fake_mistral, small):
    fake_mistral.reply_stream(["a", "b"])

    raw = b"".join(post(client, auth, {"model": "small", "messages": HI, "stream": True}).streaming_content)

    assert raw.startswith(b"data: {")
    assert raw.endswith(b"data: [DONE]\n\n")
    assert raw.count(b"data: [DONE]") == 1


def test_stream_false_gets_a_json_answer(client, auth, fake_mistral, small):
    r = post(client, auth, {"model": "small", "messages": HI, "stream": False})

    assert r["Content-Type"] == "application/json"
    assert r.json()["choices"][0]["message"]["content"] == "Echo: Hi"


# --- mock deployments, disabled deployments, load balancing ----------------------------------------


def test_mock_response_deployment_answers_without_calling_out(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="demo", model="mistral/mistral-small-latest", mock_response="Hi from the mock")

    answer = post(client, auth, {"model": "demo", "messages": HI})
    stream = post(
        client, auth, {"model": "demo", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    )

    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "Hi from the mock"
    assert answer.json()["usage"]["completion_tokens"] > 0
    payloads = events(stream)
    assert payloads[-1] == "[DONE]"
    assert payloads[-2]["choices"] == [] and payloads[-2]["usage"]["total_tokens"] > 0
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in payloads[:-2]) == "Hi from the mock"
    assert fake_mistral.requests == []


def test_disabled_deployment_is_not_found(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="off", enabled=False)

    r = post(client, auth, {"model": "off", "messages": HI})

    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    assert fake_mistral.requests == []


def test_disabling_a_deployment_takes_it_out_of_service(client, auth, fake_mistral, small):
    assert post(client, auth, {"model": "small", "messages": HI}).status_code == 200

    small.enabled = False
    small.save()

    assert post(client, auth, {"model": "small", "messages": HI}).status_code == 404


def test_deployments_sharing_an_alias_share_the_traffic_by_weight(client, auth, fake_mistral, deployment_for):
    heavy = deployment_for(fake_mistral, alias="pool", model="mistral/mistral-small-latest", weight=4)
    light = deployment_for(fake_mistral, alias="pool", model="mistral/mistral-large-latest", weight=1)

    served = Counter(post(client, auth, {"model": "pool", "messages": HI})["x-tollgate-deployment"] for _ in range(60))

    assert set(served) == {str(heavy.pk), str(light.pk)}
    assert served[str(heavy.pk)] > served[str(light.pk)]
    assert served[str(heavy.pk)] + served[str(light.pk)] == 60
    models = Counter(r.json["model"] for r in fake_mistral.requests)
    assert models == {"mistral-small-latest": served[str(heavy.pk)], "mistral-large-latest": served[str(light.pk)]}


def test_lower_order_tier_takes_all_the_traffic(client, auth, fake_mistral, deployment_for):
    first = deployment_for(fake_mistral, alias="tiered", order=1)
    deployment_for(fake_mistral, alias="tiered", model="mistral/mistral-large-latest", order=2)

    served = {post(client, auth, {"model": "tiered", "messages": HI})["x-tollgate-deployment"] for _ in range(10)}

    assert served == {str(first.pk)}


def test_streamed_tool_calls_keep_their_index(client, auth, fake_mistral, small):
    fake_mistral.reply_stream([], tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])

    chunks = events(post(client, auth, {"model": "small", "messages": HI, "tools": [WEATHER_TOOL], "stream": True}))

    calls = [call for c in chunks[:-1] for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [(0, "get_weather")]  # OpenAI SDKs need index
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


# --- settlement: every call recorded once, with what it used --------------------------------------


def recorded() -> list[UsageRecord]:
    return list(UsageRecord.objects.order_by("id"))


def test_a_json_answer_is_recorded_once_with_its_usage_and_price(client, auth, fake_mistral, small, caplog):
    caplog.set_level(logging.DEBUG, logger="tollgate.usage")
    fake_mistral.reply("ok", prompt_tokens=7, completion_tokens=2)

    r = post(client, auth, {"model": "small", "messages": HI, "user": "ada"})

    [row] = recorded()
    assert row.request_id == r["x-request-id"]
    assert (row.status, row.prompt_tokens, row.completion_tokens, row.total_tokens) == (200, 7, 2, 9)
    assert (row.endpoint, row.model, row.provider, row.provider_model) == (
        "chat",
        "small",
        "mistral",
        small.provider_model,
    )
    assert (row.deployment_id, row.stream, row.tokens_estimated, row.error_type) == (small.pk, False, False, "")
    assert (row.key_hash, row.end_user) == ("", "ada")  # the master key has no hash on file
    assert row.cost == row.input_cost_per_token * 7 + row.output_cost_per_token * 2 > 0
    assert json.loads(r["x-tollgate-cost"]) == pytest.approx(float(row.cost))
    assert row.price_source.startswith("list:mistral/")
    assert row.ended_at >= row.started_at and row.latency_ms > 0
    [line] = [r.getMessage() for r in caplog.records if r.name == "tollgate.usage"]
    assert MASTER_KEY not in line and "fake-mistral-key" not in line


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_stream_is_recorded_once_before_done(client, auth, fake_mistral, small, include_usage):
    fake_mistral.reply_stream(["a", "b", "c"], prompt_tokens=4, completion_tokens=3)

    r = post(
        client,
        auth,
        {"model": "small", "messages": HI, "stream": True, "stream_options": {"include_usage": include_usage}},
    )
    for piece in r.streaming_content:
        if piece == b"data: [DONE]\n\n":
            assert len(recorded()) == 1  # a client holding the whole answer is never unbilled
    assert piece == b"data: [DONE]\n\n"

    [row] = recorded()
    assert (row.stream, row.status, row.prompt_tokens, row.completion_tokens) == (True, 200, 4, 3)
    assert row.time_to_first_token_ms is not None and 0 < row.time_to_first_token_ms <= row.latency_ms
    assert not row.tokens_estimated


@pytest.mark.django_db(transaction=True)  # closing the response early closes the DB connection, as a server would
def test_a_caller_leaving_mid_stream_is_recorded_once_with_estimated_tokens(client, auth, fake_mistral, small):
    fake_mistral.reply_stream(["alpha", " beta", " gamma", " delta"], delay=0.05)

    r = post(client, auth, {"model": "small", "messages": HI, "stream": True})
    stream = iter(r.streaming_content)
    next(stream), next(stream)
    r.close()

    [row] = recorded()
    assert (row.status, row.stream, row.tokens_estimated) == (499, True, True)
    assert row.prompt_tokens > 0 and 1 <= row.completion_tokens <= 4  # what was relayed, not what was asked
    assert row.cost > 0
    still = post(client, auth, {"model": "small", "messages": HI})
    assert still.status_code == 200
    assert len(recorded()) == 2


def test_streams_reuse_the_upstream_connection(client, auth, fake_mistral, small):
    def idle_sockets() -> list:
        pool = http.pool().connection_from_url(fake_mistral.url)
        return [c.sock.getsockname() for c in list(pool.pool.queue) if c is not None and c.sock is not None]

    events(post(client, auth, {"model": "small", "messages": HI, "stream": True}))
    after_first = idle_sockets()
    events(post(client, auth, {"model": "small", "messages": HI, "stream": True}))

    assert len(after_first) == 1  # read to its end after [DONE], not closed: no new handshake per stream
    assert idle_sockets() == after_first


def test_a_price_change_during_a_call_applies_from_the_next_call(client, auth, fake_mistral, small):
    fake_mistral.reply_stream(["a", "b"], prompt_tokens=4, completion_tokens=2)
    r = post(client, auth, {"model": "small", "messages": HI, "stream": True})
    stream = iter(r.streaming_content)
    next(stream)  # the call has started at the old price

    ModelPrice.objects.create(
        price_list="mistral",
        model=small.provider_model,
        input_cost_per_token=Decimal("0.001"),
        output_cost_per_token=Decimal("0.002"),
        effective_from=timezone.now(),
    )
    list(stream)
    events(post(client, auth, {"model": "small", "messages": HI, "stream": True}))

    before, after = recorded()
    assert before.input_cost_per_token != Decimal("0.001")  # the shipped price, as the call started
    assert (after.input_cost_per_token, after.output_cost_per_token) == (Decimal("0.001"), Decimal("0.002"))
    assert after.cost == Decimal("0.001") * after.prompt_tokens + Decimal("0.002") * after.completion_tokens > 0

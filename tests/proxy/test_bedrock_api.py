"""The `bedrock/` provider through the views: Tollgate's real boto3 client against the fake Bedrock on 127.0.0.1.

Every request the fake answers carried a valid SigV4 signature; nothing in botocore is stubbed.
"""

import base64
import json

import pytest

from billing.models import UsageRecord
from tests.conftest import HI
from tests.fakes.bedrock import FakeBedrock, png
from tests.proxy.test_chat_api import WEATHER_TOOL, events, post

pytest_plugins = ["tests.fakes.bedrock_fixtures"]  # fake_bedrock, bedrock_for

SEVEN_B = "bedrock/mistral.mistral-7b-instruct-v0:2"


def text_of(payloads: list) -> str:
    return "".join(
        (p["choices"][0]["delta"].get("content") or "") for p in payloads if isinstance(p, dict) and p.get("choices")
    )


@pytest.fixture
def large(fake_bedrock, bedrock_for):
    return bedrock_for(fake_bedrock, alias="large")


# --- Converse -------------------------------------------------------------------------------------


def test_converse_answer_is_openai_shaped_with_usage_and_cost(client, auth, fake_bedrock, large):
    fake_bedrock.reply("Bonjour!", prompt_tokens=7, completion_tokens=2)

    r = post(client, auth, {"model": "large", "messages": HI, "max_tokens": 50, "temperature": 0.2})

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert float(r["x-tollgate-cost"]) == pytest.approx((7 * 2 + 2 * 6) / 1e6)  # Large 2 on Bedrock: $2 / $6
    sent = fake_bedrock.last_request
    assert sent.path == "/model/mistral.mistral-large-2407-v1:0/converse"
    assert sent.json["messages"] == [{"role": "user", "content": [{"text": "Hi"}]}]
    assert sent.json["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2}


def test_the_model_id_is_percent_encoded_and_signed_as_sent(client, auth, fake_bedrock, large):
    post(client, auth, {"model": "large", "messages": HI})

    sent = fake_bedrock.last_request
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={FakeBedrock.ACCESS_KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert fake_bedrock.signers == [FakeBedrock.ACCESS_KEY_ID]


def test_system_prompts_go_apart_and_turns_of_one_role_are_merged(client, auth, fake_bedrock, large):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One"},
        {"role": "user", "content": [{"type": "text", "text": "Two"}]},
    ]
    r = post(client, auth, {"model": "large", "messages": messages})

    assert r.status_code == 200
    sent = fake_bedrock.last_request.json
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "One"}, {"text": "Two"}]}]


def test_converse_stream_relays_each_event_as_a_chunk_with_usage_on_the_last(client, auth, fake_bedrock, large):
    fake_bedrock.reply_stream(["Sa", "lut", "!"], prompt_tokens=4, completion_tokens=3)

    r = post(client, auth, {"model": "large", "messages": HI, "stream": True})

    payloads = events(r)
    assert r["Content-Type"] == "text/event-stream"
    assert payloads[-1] == "[DONE]"
    assert text_of(payloads) == "Salut!"
    last = payloads[-2]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    assert fake_bedrock.last_request.path.endswith("/converse-stream")
    [row] = UsageRecord.objects.all()
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (4, 3, 200)


def test_stream_with_include_usage_ends_with_a_usage_only_chunk(client, auth, fake_bedrock, large):
    fake_bedrock.reply_stream(["a", "b"], prompt_tokens=4, completion_tokens=2)

    payloads = events(
        post(
            client, auth, {"model": "large", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
        )
    )

    assert payloads[-2]["choices"] == []
    assert payloads[-2]["usage"]["total_tokens"] == 6


# --- tools ----------------------------------------------------------------------------------------


def test_tool_call_round_trip_keeps_the_ids_the_client_saw(client, auth, fake_bedrock, large):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = post(
        client, auth, {"model": "large", "messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    )

    assert first.status_code == 200, first.content
    choice = first.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
    assert len(call["id"]) == 9 and call["id"].isalnum()  # Bedrock's tooluse_… id, mapped for Mistral
    sent = fake_bedrock.last_request.json
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == WEATHER_TOOL["function"]["parameters"]

    messages += [
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "18C, cloudy"},
    ]
    second = post(client, auth, {"model": "large", "messages": messages, "tools": [WEATHER_TOOL]})

    assert second.status_code == 200, second.content
    assert second.json()["choices"][0]["message"]["content"] == "The tool says: 18C, cloudy"
    turns = fake_bedrock.last_request.json["messages"]
    assert turns[1]["content"][0]["toolUse"]["toolUseId"] == call["id"]
    assert turns[2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": call["id"], "content": [{"text": "18C, cloudy"}]}}],
    }


def test_foreign_tool_call_ids_are_mapped_to_the_same_9_characters_both_times(client, auth, fake_bedrock, large):
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc123XYZ_from_openai",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123XYZ_from_openai", "content": "-3C"},
    ]

    r = post(client, auth, {"model": "large", "messages": messages, "tools": [WEATHER_TOOL]})

    assert r.status_code == 200, r.content  # the fake refuses ids Bedrock-Mistral would refuse
    turns = fake_bedrock.last_request.json["messages"]
    used = turns[1]["content"][0]["toolUse"]["toolUseId"]
    assert len(used) == 9 and used.isalnum()
    assert turns[2]["content"][0]["toolResult"]["toolUseId"] == used


def test_streamed_tool_calls_arrive_whole_with_an_index(client, auth, fake_bedrock, large):
    body = {
        "model": "large",
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "stream": True,
    }

    payloads = events(post(client, auth, body))

    calls = [c for p in payloads if isinstance(p, dict) for c in p["choices"][0]["delta"].get("tool_calls") or []]
    assert len(calls) == 1
    assert calls[0]["index"] == 0 and len(calls[0]["id"]) == 9
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert payloads[-2]["choices"][0]["finish_reason"] == "tool_calls"


# --- images ---------------------------------------------------------------------------------------


def test_a_data_url_image_becomes_a_converse_image_block(client, auth, fake_bedrock, large):
    image = png(3, 3)
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(image).decode()}},
    ]

    r = post(client, auth, {"model": "large", "messages": [{"role": "user", "content": content}]})

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == f"I see an image: png ({len(image)} bytes)"
    block = fake_bedrock.last_request.json["messages"][0]["content"][1]
    assert block["image"]["format"] == "png"
    assert base64.b64decode(block["image"]["source"]["bytes"]) == image


def test_an_image_url_is_fetched(client, auth, fake_bedrock, large):
    url = fake_bedrock.image_url("cat.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 60, "image/jpeg")

    r = post(
        client,
        auth,
        {
            "model": "large",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
        },
    )

    assert r.status_code == 200, r.content
    assert r.json()["choices"][0]["message"]["content"] == "I see an image: jpeg (64 bytes)"


def test_an_image_over_bedrocks_limit_is_a_clear_400_and_nothing_is_sent(client, auth, fake_bedrock, large):
    url = fake_bedrock.image_url("huge.png", png(padding=3_800_000))

    r = post(
        client,
        auth,
        {
            "model": "large",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
        },
    )

    assert r.status_code == 400
    error = r.json()["error"]
    assert "3.75 MB" in error["message"] and error["code"] == "invalid_image"
    assert not any(req.path.startswith("/model/") for req in fake_bedrock.requests)


def test_an_image_that_is_not_an_image_is_a_400(client, auth, fake_bedrock, large):
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"hello").decode()}}
    ]

    r = post(client, auth, {"model": "large", "messages": [{"role": "user", "content": content}]})

    assert r.status_code == 400
    assert "PNG, JPEG, GIF or WebP" in r.json()["error"]["message"]


# --- InvokeModel ----------------------------------------------------------------------------------


def test_mistral_7b_defaults_to_invoke_with_the_instruction_prompt(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, alias="seven", model=SEVEN_B)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Again"},
    ]

    r = post(client, auth, {"model": "seven", "messages": messages, "max_tokens": 20})

    assert r.status_code == 200, r.content
    sent = fake_bedrock.last_request
    assert sent.path == "/model/mistral.mistral-7b-instruct-v0:2/invoke"
    assert sent.json == {"prompt": "<s>[INST] Be brief.\n\nHi [/INST] Hello.</s>[INST] Again [/INST]", "max_tokens": 20}
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "Echo: Again"
    assert (
        body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] == 2
    )  # from the token-count headers
    assert float(r["x-tollgate-cost"]) > 0


def test_invoke_stream_relays_chunks_with_usage_from_the_invocation_metrics(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, alias="seven", model=SEVEN_B)
    fake_bedrock.reply_stream(["Hel", "lo"], prompt_tokens=5, completion_tokens=2)

    payloads = events(post(client, auth, {"model": "seven", "messages": HI, "stream": True}))

    assert text_of(payloads) == "Hello"
    assert payloads[-2]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert fake_bedrock.last_request.path.endswith("/invoke-with-response-stream")


def test_forced_invoke_on_mistral_large_2_speaks_the_messages_format_with_tools(
    client, auth, fake_bedrock, bedrock_for
):
    bedrock_for(fake_bedrock, alias="large-invoke", model="bedrock/invoke/mistral.mistral-large-2407-v1:0")
    messages = [{"role": "user", "content": "weather in Paris?"}]

    first = post(
        client,
        auth,
        {"model": "large-invoke", "messages": messages, "tools": [WEATHER_TOOL], "tool_choice": "required"},
    )

    assert first.status_code == 200, first.content
    sent = fake_bedrock.last_request
    assert sent.path == "/model/mistral.mistral-large-2407-v1:0/invoke"
    assert sent.json["tool_choice"] == "any" and sent.json["messages"] == messages
    [call] = first.json()["choices"][0]["message"]["tool_calls"]
    messages += [
        first.json()["choices"][0]["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]

    second = post(client, auth, {"model": "large-invoke", "messages": messages, "tools": [WEATHER_TOOL]})

    assert second.status_code == 200, second.content
    assert second.json()["choices"][0]["message"]["content"] == "The tool says: sunny"
    assert fake_bedrock.last_request.json["messages"][2]["tool_call_id"] == call["id"]


def test_forced_converse_on_mistral_7b_uses_converse(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, alias="seven-converse", model="bedrock/converse/mistral.mistral-7b-instruct-v0:2")

    r = post(client, auth, {"model": "seven-converse", "messages": HI})

    assert r.status_code == 200
    assert fake_bedrock.last_request.path == "/model/mistral.mistral-7b-instruct-v0:2/converse"


def test_text_completions_go_through_chat(client, auth, fake_bedrock, large):
    r = post(client, auth, {"model": "large", "prompt": "Say hi"}, path="/v1/completions")

    assert r.status_code == 200
    assert r.json()["choices"][0]["text"] == "Echo: Say hi"


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "status", "code"),
    [
        ("ValidationException", 400, "validation_exception"),
        ("ThrottlingException", 429, "throttling_exception"),
        ("ServiceQuotaExceededException", 429, "service_quota_exceeded_exception"),
        ("ModelNotReadyException", 503, "model_not_ready_exception"),
        ("ServiceUnavailableException", 503, "service_unavailable_exception"),
        ("ModelTimeoutException", 504, "upstream_timeout"),
        ("InternalServerException", 502, "internal_server_exception"),
        ("ModelErrorException", 502, "model_error_exception"),
    ],
)
def test_each_aws_error_maps_to_its_status(client, auth, fake_bedrock, large, error_type, status, code):
    fake_bedrock.error(error_type, "something specific happened")

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code
    if status != 504:
        assert "something specific happened" in error["message"]
    [row] = UsageRecord.objects.all()
    assert (row.status, row.prompt_tokens, row.cost) == (status, 0, 0)


@pytest.mark.parametrize("error_type", ["AccessDeniedException", "UnrecognizedClientException"])
def test_credential_errors_are_502s_that_name_the_problem_not_the_secret(client, auth, fake_bedrock, large, error_type):
    fake_bedrock.error(error_type, f"User: arn:aws:iam::123456789012:user/x {FakeBedrock.ACCESS_KEY_ID} denied")

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "upstream_auth_error"
    assert error_type in error["message"]
    assert "123456789012" not in error["message"] and FakeBedrock.ACCESS_KEY_ID not in error["message"]


def test_a_wrong_secret_fails_the_signature_check_with_a_502(client, auth, fake_bedrock, bedrock_for, caplog):
    bedrock_for(
        fake_bedrock,
        credentials={"aws_access_key_id": FakeBedrock.ACCESS_KEY_ID, "aws_secret_access_key": "not-the-secret-0000"},
    )

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 502
    message = r.json()["error"]["message"]
    assert "secret access key does not match" in message
    assert "not-the-secret-0000" not in message and "not-the-secret-0000" not in caplog.text
    assert fake_bedrock.signers == []  # refused before any answer


def test_an_unset_environment_reference_names_the_variable_only(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(
        fake_bedrock,
        credentials={"aws_access_key_id": "os.environ/NOPE_KEY_ID", "aws_secret_access_key": "os.environ/NOPE_SECRET"},
    )

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 500
    assert "NOPE_KEY_ID" in r.json()["error"]["message"]


def test_a_mid_stream_exception_event_becomes_an_sse_error_event(client, auth, fake_bedrock, large):
    fake_bedrock.error_mid_stream("modelStreamErrorException", after_chunks=1, message="The model crashed")

    payloads = events(post(client, auth, {"model": "large", "messages": HI, "stream": True}))

    assert "[DONE]" not in payloads
    error = payloads[-1]["error"]
    assert "The model crashed" in error["message"] and error["status"] == 502
    assert text_of(payloads[:-1]) == "Echo:"


def test_a_mid_stream_throttle_is_a_429_error_event(client, auth, fake_bedrock, large):
    fake_bedrock.error_mid_stream("throttlingException", after_chunks=0)

    payloads = events(post(client, auth, {"model": "large", "messages": HI, "stream": True}))

    assert payloads[-1]["error"]["status"] == 429


def test_an_error_before_a_stream_starts_is_a_clean_http_error(client, auth, fake_bedrock, large):
    fake_bedrock.error("ThrottlingException")

    r = post(client, auth, {"model": "large", "messages": HI, "stream": True})

    assert r.status_code == 429
    assert r["Content-Type"] == "application/json"


def test_a_silent_upstream_is_a_504(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, timeout=0.5)
    fake_bedrock.hang(3)

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"


def test_a_stream_that_stalls_ends_with_a_504_error_event(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, stream_timeout=0.3)
    fake_bedrock.reply_stream(["a", "b"], delay=1.0)

    payloads = events(post(client, auth, {"model": "large", "messages": HI, "stream": True}))

    assert payloads[-1]["error"]["status"] == 504


def test_a_non_mistral_model_cannot_be_forced_to_invoke(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, alias="nova", model="bedrock/invoke/amazon.nova-pro-v1:0")

    r = post(client, auth, {"model": "nova", "messages": HI})

    assert r.status_code == 400
    assert "bedrock/converse/amazon.nova-pro-v1:0" in r.json()["error"]["message"]

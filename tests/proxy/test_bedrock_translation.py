"""The pure translation between OpenAI chat and Bedrock's formats, and the choice of API: no network."""

import base64

import pytest
from botocore.exceptions import ClientError, EventStreamError, NoRegionError, ReadTimeoutError

from billing import prices
from proxy.exceptions import InvalidRequest, ProviderMisconfigured, UpstreamError, UpstreamTimeout
from proxy.providers import bedrock_content, bedrock_errors, bedrock_models
from proxy.providers.bedrock_content import Image, tool_call_id
from proxy.providers.bedrock_converse import converse_chunks, from_converse_response, to_converse_request
from proxy.providers.bedrock_invoke import invoke_chunks, mistral_prompt, to_messages_body, to_prompt_body
from tests.fakes import bedrock_eventstream


def no_images(url: str) -> Image:
    raise AssertionError("no image expected")


# --- which API --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "api", "invoke_format", "model_id"),
    [
        ("mistral.mistral-7b-instruct-v0:2", "invoke", "prompt", "mistral.mistral-7b-instruct-v0:2"),
        ("mistral.mixtral-8x7b-instruct-v0:1", "invoke", "prompt", "mistral.mixtral-8x7b-instruct-v0:1"),
        ("mistral.mistral-large-2402-v1:0", "converse", "prompt", "mistral.mistral-large-2402-v1:0"),
        ("mistral.mistral-large-2407-v1:0", "converse", "messages", "mistral.mistral-large-2407-v1:0"),
        ("converse/mistral.mistral-7b-instruct-v0:2", "converse", "prompt", "mistral.mistral-7b-instruct-v0:2"),
        ("invoke/mistral.mistral-large-2407-v1:0", "invoke", "messages", "mistral.mistral-large-2407-v1:0"),
        ("us.mistral.pixtral-large-2502-v1:0", "converse", "messages", "us.mistral.pixtral-large-2502-v1:0"),
        ("amazon.nova-pro-v1:0", "converse", None, "amazon.nova-pro-v1:0"),
    ],
)
def test_the_api_choice_table(model, api, invoke_format, model_id):
    chosen = bedrock_models.route(model)

    assert (chosen.api, chosen.invoke_format, chosen.model_id) == (api, invoke_format, model_id)


def test_a_region_in_the_model_path_is_taken_as_the_region():
    chosen = bedrock_models.route("converse/eu-west-3/mistral.mistral-large-2407-v1:0")

    assert (chosen.region, chosen.model_id, chosen.api) == ("eu-west-3", "mistral.mistral-large-2407-v1:0", "converse")


def test_every_bedrock_mistral_model_in_the_table_has_a_list_price():
    for model in bedrock_models.MODELS:
        assert prices.find("bedrock", model) is not None, model


# --- tool-call ids ----------------------------------------------------------------------------------


def test_tool_call_ids_are_mapped_to_9_alphanumerics_stably_and_idempotently():
    mapped = tool_call_id("call_9f8e7d6c5b4a_from_openai")

    assert len(mapped) == 9 and mapped.isalnum()
    assert tool_call_id("call_9f8e7d6c5b4a_from_openai") == mapped
    assert tool_call_id(mapped) == mapped  # an id Tollgate handed out comes back unchanged
    assert tool_call_id("abcDEF123") == "abcDEF123"
    assert tool_call_id("tooluse_A") != tool_call_id("tooluse_B")


# --- Converse requests ------------------------------------------------------------------------------


def test_a_full_conversation_becomes_a_converse_request():
    body = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"a": 1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "warm"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "w", "description": "weather"}}],
        "tool_choice": {"type": "function", "function": {"name": "w"}},
        "max_completion_tokens": 9,
        "top_p": 0.5,
        "stop": "END",
    }

    request = to_converse_request(body, load_image=no_images, tool_id=str.upper)

    assert request["system"] == [{"text": "Be brief."}]
    assert request["messages"] == [
        {"role": "user", "content": [{"text": "Weather?"}]},
        {
            "role": "assistant",
            "content": [{"text": "Checking."}, {"toolUse": {"toolUseId": "C1", "name": "w", "input": {"a": 1}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "C1", "content": [{"text": "sunny"}]}},
                {"toolResult": {"toolUseId": "C1", "content": [{"text": "warm"}]}},
            ],
        },
    ]
    assert request["inferenceConfig"] == {"maxTokens": 9, "topP": 0.5, "stopSequences": ["END"]}
    assert request["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "w",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                    "description": "weather",
                }
            }
        ],
        "toolChoice": {"tool": {"name": "w"}},
    }


def test_tool_choice_none_drops_the_tools_unless_the_history_needs_them():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"function": {"name": "w"}}],
        "tool_choice": "none",
    }

    assert "toolConfig" not in to_converse_request(body, load_image=no_images)


def test_invalid_tool_arguments_are_a_400():
    body = {
        "messages": [{"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "w", "arguments": "{not"}}]}]
    }

    with pytest.raises(InvalidRequest):
        to_converse_request(body, load_image=no_images)


def test_image_parts_use_the_loader():
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x/cat.png"}]}]}

    request = to_converse_request(body, load_image=lambda url: Image("png", url.encode()))

    assert request["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": b"https://x/cat.png"}}}
    ]


def test_a_data_url_larger_than_bedrocks_limit_is_refused_before_decoding():
    data = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * bedrock_content.MAX_IMAGE_BYTES).decode()

    with pytest.raises(InvalidRequest, match=r"3\.75 MB"):
        bedrock_content.load_image("data:image/png;base64," + data)


# --- Converse answers -------------------------------------------------------------------------------


def test_a_converse_answer_with_a_tool_call():
    answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": "w", "input": {"a": 1}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
    }

    completion = from_converse_response(answer, model="m", tool_id=str.upper)

    message = completion["choices"][0]["message"]
    assert message["content"] == ""
    assert message["tool_calls"] == [
        {"id": "T1", "type": "function", "function": {"name": "w", "arguments": '{"a": 1}'}}
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert completion["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_converse_stream_events_become_chunks_with_the_finish_held_for_the_usage():
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockStart": {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "w"}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a"'}}}},
        {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ": 1}"}}}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 2, "outputTokens": 5}, "metrics": {"latencyMs": 1}}},
    ]

    chunks = list(converse_chunks(events, model="m"))

    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Hi"}
    assert deltas[2]["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "w", "arguments": '{"a": 1}'}, "index": 0}
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    assert len({c["id"] for c in chunks}) == 1


def test_converse_chunks_are_yielded_as_events_arrive():
    def events():
        yield {"messageStart": {"role": "assistant"}}
        yield {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "first"}}}
        raise AssertionError("read too far ahead")

    chunks = converse_chunks(events(), model="m")

    assert next(chunks)["choices"][0]["delta"]["role"] == "assistant"
    assert next(chunks)["choices"][0]["delta"] == {"content": "first"}


# --- InvokeModel ------------------------------------------------------------------------------------


def test_mistral_prompt_format_multi_turn_with_system():
    messages = [
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": "A"},
        {"role": "assistant", "content": "B"},
        {"role": "user", "content": [{"type": "text", "text": "C"}]},
    ]

    assert mistral_prompt(messages) == "<s>[INST] Sys.\n\nA [/INST] B</s>[INST] C [/INST]"


def test_a_final_assistant_message_is_left_open_for_the_model_to_continue():
    messages = [{"role": "user", "content": "Count"}, {"role": "assistant", "content": "1, 2,"}]

    assert mistral_prompt(messages) == "<s>[INST] Count [/INST] 1, 2,"


def test_text_models_refuse_tools_with_a_clear_400():
    with pytest.raises(InvalidRequest, match="does not support tool calls"):
        to_prompt_body({"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]})


def test_messages_body_maps_tool_ids_and_choices():
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "function": {"name": "w", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
        "tools": [{"type": "function", "function": {"name": "w"}}],
        "tool_choice": "required",
        "max_tokens": 5,
    }

    payload = to_messages_body(body, tool_id=tool_call_id)

    mapped = tool_call_id("call_1")
    assert payload["messages"][0]["tool_calls"][0]["id"] == mapped
    assert payload["messages"][1]["tool_call_id"] == mapped
    assert (payload["tool_choice"], payload["max_tokens"]) == ("any", 5)


def test_invoke_stream_chunks_take_usage_from_the_invocation_metrics():
    payloads = [
        b'{"outputs": [{"text": "He", "stop_reason": null}]}',
        b'{"outputs": [{"text": "y", "stop_reason": "length"}], '
        b'"amazon-bedrock-invocationMetrics": {"inputTokenCount": 3, "outputTokenCount": 2}}',
    ]

    chunks = list(invoke_chunks(payloads, model="m"))

    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hey"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["total_tokens"] == 5


# --- errors -----------------------------------------------------------------------------------------


def client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Converse"
    )


def test_stream_exceptions_arrive_camel_cased_and_map_like_http_errors():
    error = EventStreamError({"Error": {"Code": "throttlingException", "Message": "slow down"}}, "ConverseStream")

    translated = bedrock_errors.translate(error, model="m")

    assert isinstance(translated, UpstreamError) and translated.status == 429


def test_credential_errors_never_repeat_aws_s_message():
    translated = bedrock_errors.translate(
        client_error("AccessDeniedException", 403, "arn:aws:iam::1234:user/bob"), model="m"
    )

    assert isinstance(translated, UpstreamError) and translated.status == 403
    assert "1234" not in translated.message


def test_transport_and_configuration_errors():
    assert isinstance(bedrock_errors.translate(ReadTimeoutError(endpoint_url="http://x"), model="m"), UpstreamTimeout)
    assert isinstance(bedrock_errors.translate(NoRegionError(), model="m"), ProviderMisconfigured)
    assert bedrock_errors.translate(ValueError("ours"), model="m") is None


# --- the fake's event-stream encoder agrees with botocore's decoder ----------------------------------


def test_the_fakes_event_stream_frames_decode_with_botocore():
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(bedrock_eventstream.event("contentBlockDelta", b'{"a": 1}'))
    buffer.add_data(bedrock_eventstream.exception("throttlingException", b'{"message": "x"}'))

    first, second = list(buffer)
    assert first.headers[":event-type"] == "contentBlockDelta" and first.payload == b'{"a": 1}'
    assert second.headers[":message-type"] == "exception"

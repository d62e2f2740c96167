"""OpenAI chat ⇄ Anthropic Messages API: the pure translation functions, without a network."""

import json

import pytest

from proxy.exceptions import InvalidRequest, UpstreamError, UpstreamUnavailable
from proxy.providers import anthropic_convert as convert
from proxy.providers import anthropic_errors, anthropic_stream
from proxy.providers.anthropic import messages_url

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgo="


def request(body: dict, default: int = 4096) -> dict:
    return convert.to_messages_request(body, model="claude-sonnet-4-5", default_max_tokens=default)


# --- request --------------------------------------------------------------------------------------


def test_system_and_developer_messages_are_lifted_out_of_the_conversation():
    sent = request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            ]
        }
    )

    assert sent["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert sent["model"] == "claude-sonnet-4-5"


def test_max_tokens_is_the_callers_else_the_default():
    hi = [{"role": "user", "content": "Hi"}]
    assert request({"messages": hi, "max_tokens": 50})["max_tokens"] == 50
    assert request({"messages": hi, "max_completion_tokens": 70, "max_tokens": 50})["max_tokens"] == 70
    assert request({"messages": hi}, default=64_000)["max_tokens"] == 64_000


def test_sampling_fields_and_stop_sequences_travel_and_openai_only_fields_do_not():
    sent = request(
        {
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 5,
            "stop": "END",
            "user": "customer-1",
            "stream_options": {"include_usage": True},
            "n": 1,
            "seed": 7,
            "metadata": {"tag": "x"},
            "presence_penalty": 0.1,
        }
    )

    assert sent["stop_sequences"] == ["END"]
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.3, 0.9, 5)
    assert sent["metadata"] == {"user_id": "customer-1"}
    assert not {"stream_options", "n", "seed", "presence_penalty", "stop", "user"} & set(sent)
    assert request({"messages": [{"role": "user", "content": "Hi"}], "stop": ["a", "b"]})["stop_sequences"] == [
        "a",
        "b",
    ]


def test_tools_and_each_tool_choice():
    hi = [{"role": "user", "content": "Hi"}]
    sent = request({"messages": hi, "tools": [WEATHER]})
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": WEATHER["function"]["parameters"],
        }
    ]
    assert "tool_choice" not in sent
    choices = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
    }
    for openai_choice, anthropic_choice in choices.items():
        assert request({"messages": hi, "tools": [WEATHER], "tool_choice": openai_choice})["tool_choice"] == (
            anthropic_choice
        )
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert request({"messages": hi, "tools": [WEATHER], "tool_choice": named})["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    serial = request({"messages": hi, "tools": [WEATHER], "parallel_tool_calls": False})
    assert serial["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tools" not in request({"messages": hi, "tool_choice": "auto"})


def test_tool_calls_and_results_become_tool_use_and_a_user_turn_of_tool_results():
    sent = request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Lyon?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "Lyon"}},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "22C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "18C"}]},
                {"role": "user", "content": "Thanks. Which is warmer?"},
            ]
        }
    )

    _, assistant, results = sent["messages"]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Lyon"}},
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "18C"}]},
            {"type": "text", "text": "Thanks. Which is warmer?"},
        ],
    }


def test_bad_tool_call_arguments_and_a_tool_message_without_id_are_400s():
    bad_arguments = {
        "role": "assistant",
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "not json"}}],
    }
    with pytest.raises(InvalidRequest):
        request({"messages": [{"role": "user", "content": "x"}, bad_arguments]})
    with pytest.raises(InvalidRequest):
        request({"messages": [{"role": "tool", "content": "x"}]})
    with pytest.raises(InvalidRequest):
        request({"messages": [{"role": "function", "content": "x"}]})


def test_images_data_urls_become_base64_sources_and_http_urls_url_sources():
    sent = request(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                        {"type": "text", "text": "  "},  # blank: Anthropic refuses empty text blocks
                    ],
                }
            ]
        }
    )

    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "data:image/png,rawbytes", "data:image/png;base64,"])
def test_an_image_that_is_neither_http_nor_base64_is_a_400(url):
    with pytest.raises(InvalidRequest) as e:
        request({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]})
    assert e.value.code == "invalid_image"


def test_unsupported_content_parts_are_a_400():
    with pytest.raises(InvalidRequest):
        request({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})


def test_cache_control_on_text_parts_is_kept():
    part = {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}
    sent = request({"messages": [{"role": "system", "content": [part]}, {"role": "user", "content": "Hi"}]})
    assert sent["system"] == [part]


# --- response -------------------------------------------------------------------------------------


def test_a_text_answer_becomes_a_chat_completion_with_usage():
    answer = convert.from_messages_response(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Bonjour"}, {"type": "text", "text": "!"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 7, "output_tokens": 2},
        }
    )

    assert answer["object"] == "chat.completion"
    assert answer["model"] == "claude-sonnet-4-5-20250929"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour!"}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def test_tool_use_becomes_tool_calls_with_string_content():
    answer = convert.from_messages_response(
        {
            "id": "msg_2",
            "model": "claude",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )

    message = answer["choices"][0]["message"]
    assert message["content"] == ""
    assert message["tool_calls"] == [
        {"id": "toolu_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert answer["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("anthropic", "openai"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reasons(anthropic, openai):
    assert convert.stop_reason(anthropic) == openai


def test_cache_tokens_count_as_prompt_tokens():
    usage = convert.usage_dict(
        {"input_tokens": 10, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000, "output_tokens": 5}
    )
    assert usage == {
        "prompt_tokens": 1110,
        "completion_tokens": 5,
        "total_tokens": 1115,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }


# --- stream ---------------------------------------------------------------------------------------


def stream_events(*middle: dict, stop: str = "end_turn", output: int = 3) -> list[dict]:
    return [
        {
            "type": "message_start",
            "message": {"id": "msg_s", "model": "claude-x", "usage": {"input_tokens": 12, "output_tokens": 1}},
        },
        {"type": "ping"},
        *middle,
        {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": output}},
        {"type": "message_stop"},
    ]


def text_block(*pieces: str, index: int = 0) -> list[dict]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        *({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}} for p in pieces),
        {"type": "content_block_stop", "index": index},
    ]


def test_text_deltas_pass_one_by_one_and_the_last_chunk_carries_finish_and_usage():
    out = list(anthropic_stream.chunks(stream_events(*text_block("Hel", "lo")), model="fallback"))

    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in out[1:3]] == ["Hel", "lo"]
    last = out[-1]
    assert last["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert last["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert {c["id"] for c in out} == {"msg_s"} and {c["model"] for c in out} == {"claude-x"}
    assert all("usage" not in c for c in out[:-1])


def test_a_tool_calls_input_fragments_are_passed_on_whole_when_its_block_ends():
    tool = [
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
        {"type": "content_block_stop", "index": 1},
    ]
    events = stream_events(*text_block("Let me check."), *tool, stop="tool_use")

    out = list(anthropic_stream.chunks(events, model="m"))

    calls = [c["choices"][0]["delta"]["tool_calls"] for c in out if "tool_calls" in c["choices"][0]["delta"]]
    assert calls == [
        [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                "index": 0,
            }
        ]
    ]
    assert json.loads(calls[0][0]["function"]["arguments"]) == {"city": "Paris"}
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_tool_without_input_gets_an_empty_object():
    tool = [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "now"}},
        {"type": "content_block_stop", "index": 0},
    ]
    out = list(anthropic_stream.chunks(stream_events(*tool, stop="tool_use"), model="m"))
    assert out[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_thinking_blocks_are_not_relayed():
    thinking = [
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "x"}},
        {"type": "content_block_stop", "index": 0},
    ]
    out = list(anthropic_stream.chunks(stream_events(*thinking, *text_block("Hi", index=1)), model="m"))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in out) == "Hi"


def test_an_error_event_raises_the_mapped_upstream_error():
    events = [
        *stream_events()[:2],
        *text_block("Hel")[:2],
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    out = anthropic_stream.chunks(events, model="m")
    assert next(out)["choices"][0]["delta"]["role"] == "assistant"
    assert next(out)["choices"][0]["delta"]["content"] == "Hel"
    with pytest.raises(UpstreamError) as e:
        next(out)
    assert (e.value.status, e.value.code, e.value.message) == (503, "overloaded", "Overloaded")


def test_a_stream_ending_before_message_stop_is_an_error_not_a_short_answer():
    with pytest.raises(UpstreamUnavailable) as e:
        list(anthropic_stream.chunks(stream_events(*text_block("Hel"))[:-2], model="m"))
    assert e.value.code == "upstream_stream_broken"


# --- errors and URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "reported", "code"),
    [
        (529, "overloaded_error", 503, "overloaded"),
        (429, "rate_limit_error", 429, None),
        (400, "invalid_request_error", 400, None),
        (401, "authentication_error", 401, None),
        (403, "permission_error", 403, None),
        (404, "not_found_error", 404, "model_not_found"),
        (500, "api_error", 500, None),
    ],
)
def test_http_errors_map_by_type(status, kind, reported, code):
    body = json.dumps({"type": "error", "error": {"type": kind, "message": "the message"}}).encode()
    error = anthropic_errors.http_error(status, body, "7")
    assert (error.status, error.code, error.message, error.retry_after) == (reported, code, "the message", "7")


def test_a_529_without_a_json_body_is_still_overloaded():
    error = anthropic_errors.http_error(529, b"<html>overloaded</html>", None)
    assert (error.status, error.code) == (503, "overloaded")


@pytest.mark.parametrize(
    "base",
    [
        "https://api.anthropic.com",
        "https://api.anthropic.com/",
        "https://api.anthropic.com/v1",
        "https://api.anthropic.com/v1/messages",
    ],
)
def test_messages_url_accepts_the_root_v1_or_the_endpoint(base):
    assert messages_url(base) == "https://api.anthropic.com/v1/messages"

"""OpenAI chat ⇄ Gemini generateContent, the stream, embeddings and Google's errors: pure functions, no network."""

import json

import pytest

from proxy.exceptions import InvalidRequest, UpstreamError, UpstreamTimeout
from proxy.providers import gemini_convert as convert
from proxy.providers import gemini_embed, google_errors
from proxy.providers.gemini_stream import gemini_chunks

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["C", "F"]}},
            "required": ["city"],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
        "strict": True,
    },
}


# --- request --------------------------------------------------------------------------------------


def test_system_prompts_go_apart_and_roles_become_user_and_model():
    request = convert.to_gemini_request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": [{"type": "text", "text": "Again"}]},
            ]
        }
    )

    assert request["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Salut"}]},
        {"role": "user", "parts": [{"text": "Again"}]},
    ]
    assert "generationConfig" not in request and "tools" not in request


def test_turns_of_one_role_are_merged_and_empty_ones_dropped():
    request = convert.to_gemini_request(
        {
            "messages": [
                {"role": "user", "content": "One"},
                {"role": "user", "content": ""},
                {"role": "user", "content": "Two"},
            ]
        }
    )

    assert request["contents"] == [{"role": "user", "parts": [{"text": "One"}, {"text": "Two"}]}]


def test_sampling_options_go_into_generation_config():
    config = convert.generation_config(
        {
            "max_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "presence_penalty": 0.1,
            "response_format": {"type": "json_object"},
        }
    )

    assert config == {
        "maxOutputTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.1,
        "responseMimeType": "application/json",
    }


def test_a_json_schema_response_format_sends_the_schema_gemini_accepts():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}

    config = convert.generation_config({"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}})

    assert config == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }


def test_tools_become_function_declarations_with_a_cleaned_schema():
    request = convert.to_gemini_request({"messages": [{"role": "user", "content": "Hi"}], "tools": [WEATHER]})

    (declaration,) = request["tools"][0]["functionDeclarations"]
    assert declaration == {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "nullable": True, "enum": ["C", "F"]},
            },
            "required": ["city"],
        },
    }
    assert "toolConfig" not in request


def test_a_function_without_arguments_sends_no_parameters():
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}

    request = convert.to_gemini_request({"messages": [{"role": "user", "content": "Hi"}], "tools": [tool]})

    assert request["tools"][0]["functionDeclarations"] == [{"name": "now"}]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ("any", {"mode": "ANY"}),  # Mistral's name for required
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice, config):
    assert convert.tool_config(choice) == {"functionCallingConfig": config}


def test_an_unknown_tool_choice_is_a_400():
    with pytest.raises(InvalidRequest):
        convert.tool_config("sometimes")


def test_a_tool_round_trip_names_the_function_from_the_assistant_call():
    request = convert.to_gemini_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": '{"temp": 25}'},
            ]
        }
    )

    assert request["contents"][1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
        ],
    }
    # Parallel results travel in one user turn; a JSON object result goes as it is, text is wrapped.
    assert request["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 25}}},
        ],
    }


def test_a_tool_result_without_its_call_is_a_400_naming_the_id():
    with pytest.raises(InvalidRequest, match="call_9"):
        convert.to_gemini_request({"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]})


def test_a_thought_signature_rides_in_the_tool_call_id_and_comes_back():
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    call = convert.from_gemini_response(answer, model="gemini-3-pro-preview")["choices"][0]["message"]["tool_calls"][0]

    request = convert.to_gemini_request(
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "18C"},
            ]
        }
    )

    assert call["id"].endswith("__thought__c2ln")
    assert request["contents"][1]["parts"][0]["thoughtSignature"] == "c2ln"


def test_images_become_inline_data_or_file_data():
    parts = convert.to_gemini_request(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "image_url", "image_url": "https://example.com/cat.webp?size=2"},
                        {"type": "image_url", "image_url": {"url": "gs://bucket/dog"}},
                    ],
                }
            ]
        }
    )["contents"][0]["parts"]

    assert parts == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=2"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/dog"}},
    ]


@pytest.mark.parametrize("url", ["data:image/png;base64,not base64!", "data:image/png,plain", ""])
def test_a_bad_image_is_a_400(url):
    with pytest.raises(InvalidRequest) as e:
        convert.image_part(url)
    assert e.value.code == "invalid_image"


def test_an_unsupported_content_part_is_a_400():
    with pytest.raises(InvalidRequest, match="input_audio"):
        convert.to_gemini_request({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]})


# --- response -------------------------------------------------------------------------------------


def test_an_answer_with_thoughts_and_usage():
    answer = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "thinking...", "thought": True}, {"text": "Bonjour"}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "thoughtsTokenCount": 30},
        "modelVersion": "gemini-2.5-pro",
    }

    completion = convert.from_gemini_response(answer, model="gemini-2.5-pro")

    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Bonjour"}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 32,  # thinking is billed as output
        "total_tokens": 39,
        "completion_tokens_details": {"reasoning_tokens": 30},
    }


def test_tool_calls_finish_with_tool_calls_and_get_ids():
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
                },
                "finishReason": "STOP",
            }
        ]
    }

    choice = convert.from_gemini_response(answer, model="m")["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert choice["message"]["content"] == ""


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(reason, expected):
    assert convert.finish_reason(reason) == expected


def test_a_blocked_prompt_is_recognised():
    assert convert.blocked_prompt({"promptFeedback": {"blockReason": "SAFETY"}}) == "SAFETY"
    assert convert.blocked_prompt({"candidates": [{}], "promptFeedback": {}}) is None


# --- stream ---------------------------------------------------------------------------------------


def test_stream_events_become_chunks_with_usage_on_the_last():
    events = [
        {"candidates": [{"content": {"parts": [{"text": "Sa"}]}}], "usageMetadata": {"promptTokenCount": 4}},
        {"candidates": [{"content": {"parts": [{"text": "lut"}]}}]},
        {
            "candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3},
        },
    ]

    chunks = list(gemini_chunks(events, model="gemini-2.5-flash"))

    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Sa"},
        {"content": "lut"},
        {"content": "!"},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    assert len({c["id"] for c in chunks}) == 1


def test_streamed_tool_calls_are_indexed_across_events():
    call = {"functionCall": {"name": "f", "args": {}}}
    events = [
        {"candidates": [{"content": {"parts": [call]}}]},
        {"candidates": [{"content": {"parts": [call]}, "finishReason": "STOP"}]},
    ]

    chunks = list(gemini_chunks(events, model="m"))

    indexes = [tc["index"] for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert indexes == [0, 1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_stream_stopped_by_safety_ends_with_content_filter():
    events = [{"candidates": [{"content": {"parts": [{"text": "Hm"}]}, "finishReason": "SAFETY"}]}]

    assert list(gemini_chunks(events, model="m"))[-1]["choices"][0]["finish_reason"] == "content_filter"


# --- errors ---------------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str = "said no", reason: str | None = None) -> bytes:
    error: dict = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("code", "status", "expected_status"),
    [
        (400, "INVALID_ARGUMENT", 400),
        (400, "FAILED_PRECONDITION", 400),
        (404, "NOT_FOUND", 404),
        (429, "RESOURCE_EXHAUSTED", 429),
        (503, "UNAVAILABLE", 503),
        (500, "INTERNAL", 502),
    ],
)
def test_google_statuses(code, status, expected_status):
    error = google_errors.from_response(code, google_error(code, status), provider="vertex_ai")

    assert isinstance(error, UpstreamError)
    assert error.status == expected_status
    assert error.code == status.lower()
    assert error.message == "said no"


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [(401, "UNAUTHENTICATED", None), (403, "PERMISSION_DENIED", None), (400, "INVALID_ARGUMENT", "API_KEY_INVALID")],
)
def test_credential_errors_name_the_problem_without_repeating_google(code, status, reason):
    body = google_error(code, status, "denied on projects/secret-project-4711", reason)

    error = google_errors.from_response(code, body, provider="gemini")

    assert isinstance(error, UpstreamError)
    assert (error.status, error.code) == (403, "upstream_auth_error")  # proxy/errors.py answers 502
    assert "secret-project" not in error.message


def test_deadline_exceeded_is_a_timeout():
    assert isinstance(
        google_errors.from_response(504, google_error(504, "DEADLINE_EXCEEDED"), provider="g"), UpstreamTimeout
    )


def test_a_stream_without_alt_sse_wraps_its_error_in_a_list():
    data = b"[" + google_error(429, "RESOURCE_EXHAUSTED") + b"]"

    assert google_errors.from_response(429, data, provider="g").status == 429


def test_a_non_google_error_body_keeps_the_http_status_and_message():
    error = google_errors.from_response(422, b'{"object": "error", "message": "extra field"}', provider="vertex_ai")

    assert (error.status, error.message, error.code) == (422, "extra field", None)


def test_a_mid_stream_error_event():
    error = google_errors.from_event(
        {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}, provider="g"
    )

    assert (error.status, error.message) == (503, "overloaded")


# --- embeddings -----------------------------------------------------------------------------------


def test_embeddings_for_ai_studio_and_vertex():
    body = {"input": ["a b", "c"], "dimensions": 4}

    assert gemini_embed.to_batch_request(body, model="gemini-embedding-001") == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "a b"}]},
                "outputDimensionality": 4,
            },
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 4},
        ]
    }
    assert gemini_embed.to_predict_request(body) == {
        "instances": [{"content": "a b"}, {"content": "c"}],
        "parameters": {"outputDimensionality": 4},
    }
    answer = {"predictions": [{"embeddings": {"values": [0.5], "statistics": {"token_count": 2}}}] * 2}
    result = gemini_embed.from_predict_response(answer, body, model="text-embedding-005")
    assert result["usage"]["prompt_tokens"] == 4
    assert [d["embedding"] for d in result["data"]] == [[0.5], [0.5]]


def test_embeddings_take_text_only():
    with pytest.raises(InvalidRequest):
        gemini_embed.inputs({"input": [[1, 2, 3]]})

"""Pure translation functions: OpenAI-shaped bodies → Mistral's dialect, provider answers → SDK shapes.

No network and no database: these are the functions the adapters and the relay are built from.
"""

import base64
import struct

from proxy import shapes
from proxy.providers.base import Usage
from proxy.providers.mistral import prompt_as_chat, to_mistral_chat, to_mistral_fim

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def openai_body(**extra):
    return {"model": "small", "messages": [{"role": "user", "content": "Hi"}], **extra}


# --- to_mistral_chat: what Mistral would refuse is stripped ---------------------------------------


def test_openai_only_request_fields_are_stripped():
    body = openai_body(
        stream=True,
        stream_options={"include_usage": True},
        user="u-1",
        logit_bias={"50256": -100},
        logprobs=True,
        top_logprobs=2,
        store=True,
        service_tier="auto",
        modalities=["text"],
    )

    payload = to_mistral_chat(body, "mistral-small-latest")

    assert payload == {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_the_provider_model_replaces_the_alias():
    assert to_mistral_chat(openai_body(), "mistral-large-2411")["model"] == "mistral-large-2411"


def test_null_fields_are_left_out():
    payload = to_mistral_chat(openai_body(temperature=None, tools=None, max_tokens=None), "m")

    assert set(payload) == {"model", "messages"}


def test_the_callers_body_is_not_modified():
    body = openai_body(
        seed=1,
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi", "name": "ann"}],
    )
    before = repr(body)

    to_mistral_chat(body, "m")

    assert repr(body) == before


def test_tool_call_index_is_stripped_from_assistant_messages():
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"},
    ]

    payload = to_mistral_chat(openai_body(messages=messages, tools=[WEATHER_TOOL]), "m")

    assert payload["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "type": "function", "function": call["function"]}],
    }
    assert payload["messages"][2] == messages[2]
    assert payload["tools"] == [WEATHER_TOOL]


def test_openai_only_message_fields_are_stripped():
    messages = [
        {"role": "system", "content": "Be brief.", "name": "setup"},
        {"role": "user", "content": "Hi", "name": "ann"},
        {"role": "assistant", "content": "Hello", "refusal": None, "annotations": [], "audio": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "More"}]},
    ]

    payload = to_mistral_chat(openai_body(messages=messages), "m")

    assert payload["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "More"}]},
    ]


def test_assistant_null_content_becomes_an_empty_string():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "Again"},
    ]

    assert to_mistral_chat(openai_body(messages=messages), "m")["messages"][1] == {"role": "assistant", "content": ""}


def test_developer_role_becomes_system():
    messages = [{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Hi"}]

    assert to_mistral_chat(openai_body(messages=messages), "m")["messages"][0] == {
        "role": "system",
        "content": "Answer in French.",
    }


# --- to_mistral_chat: OpenAI names with a Mistral twin are renamed --------------------------------


def test_seed_becomes_random_seed():
    payload = to_mistral_chat(openai_body(seed=42), "m")

    assert payload["random_seed"] == 42
    assert "seed" not in payload


def test_max_completion_tokens_becomes_max_tokens():
    payload = to_mistral_chat(openai_body(max_completion_tokens=64), "m")

    assert payload["max_tokens"] == 64
    assert "max_completion_tokens" not in payload


def test_tool_choice_required_becomes_any():
    assert to_mistral_chat(openai_body(tools=[WEATHER_TOOL], tool_choice="required"), "m")["tool_choice"] == "any"


def test_other_tool_choices_pass_unchanged():
    named = {"type": "function", "function": {"name": "get_weather"}}

    assert to_mistral_chat(openai_body(tool_choice="auto"), "m")["tool_choice"] == "auto"
    assert to_mistral_chat(openai_body(tool_choice="none"), "m")["tool_choice"] == "none"
    assert to_mistral_chat(openai_body(tool_choice=named), "m")["tool_choice"] == named


def test_mistral_only_fields_are_kept():
    messages = [{"role": "user", "content": "Write a poem"}, {"role": "assistant", "content": "Roses", "prefix": True}]
    body = openai_body(messages=messages, safe_prompt=True, random_seed=7, prompt_mode="reasoning", min_tokens=3)

    payload = to_mistral_chat(body, "m")

    assert (payload["safe_prompt"], payload["random_seed"], payload["prompt_mode"], payload["min_tokens"]) == (
        True,
        7,
        "reasoning",
        3,
    )
    assert payload["messages"][1] == {"role": "assistant", "content": "Roses", "prefix": True}


def test_shared_sampling_fields_pass_unchanged():
    body = openai_body(
        temperature=0.2,
        top_p=0.9,
        max_tokens=10,
        stop=["\n"],
        n=1,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        response_format={"type": "json_object"},
        parallel_tool_calls=False,
    )

    payload = to_mistral_chat(body, "m")

    assert {k: payload[k] for k in body if k not in ("model", "messages")} == {
        k: v for k, v in body.items() if k not in ("model", "messages")
    }


def test_fim_payload_keeps_prompt_and_suffix_only():
    body = {
        "model": "code",
        "prompt": "def add(a, b):",
        "suffix": "\n",
        "stream": False,
        "user": "u",
        "stream_options": {"include_usage": True},
        "seed": 3,
        "echo": False,
    }

    assert to_mistral_fim(body, "codestral-latest") == {
        "model": "codestral-latest",
        "prompt": "def add(a, b):",
        "suffix": "\n",
        "stream": False,
        "random_seed": 3,
    }


def test_a_text_prompt_becomes_one_user_message():
    body = {
        "model": "small",
        "prompt": ["Say hi"],
        "suffix": "x",
        "echo": False,
        "best_of": 1,
        "logprobs": None,
        "max_tokens": 5,
    }

    assert prompt_as_chat(body) == {
        "model": "small",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "Say hi"}],
    }


# --- shapes: what every SDK can parse ---------------------------------------------------------------


def test_chat_completion_gets_string_content_and_an_object():
    answer = {
        "id": "x",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function"}]},
                "finish_reason": "tool_calls",
            }
        ],
    }

    shaped = shapes.chat_completion(answer)

    assert shaped["object"] == "chat.completion"
    assert shaped["choices"][0]["message"]["content"] == ""
    assert shaped["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_completion_maps_model_length_to_length():
    answer = {"choices": [{"index": 0, "message": {"content": "cut"}, "finish_reason": "model_length"}]}

    shaped = shapes.chat_completion(answer)

    assert shaped["choices"][0]["finish_reason"] == "length"
    assert shaped["choices"][0]["message"]["role"] == "assistant"
    assert shaped["id"] and isinstance(shaped["created"], int)


def test_chat_chunk_maps_finish_reason_and_keeps_open_ones_null():
    chunk = {
        "choices": [
            {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
            {"index": 1, "delta": {}, "finish_reason": "model_length"},
        ]
    }

    shaped = shapes.chat_chunk(chunk)

    assert shaped["object"] == "chat.completion.chunk"
    assert [c["finish_reason"] for c in shaped["choices"]] == [None, "length"]


def test_usage_chunk_has_no_choices():
    chunk = shapes.usage_chunk(chunk_id="c1", created=5, model="small", usage=Usage(3, 4))

    assert chunk == {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "small",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def test_embeddings_get_an_id_and_completion_tokens():
    answer = {"model": "embed", "data": [{"index": 0, "embedding": [0.5, -0.25]}], "usage": {"prompt_tokens": 3}}

    shaped = shapes.embeddings(answer, encoding_format=None)

    assert shaped["id"]
    assert shaped["object"] == "list"
    assert shaped["usage"] == {"prompt_tokens": 3, "total_tokens": 3, "completion_tokens": 0}
    assert shaped["data"][0] == {"index": 0, "embedding": [0.5, -0.25], "object": "embedding"}


def test_embeddings_without_usage_get_zeroes():
    assert shapes.embeddings({"data": []}, encoding_format="float")["usage"] == {
        "prompt_tokens": 0,
        "total_tokens": 0,
        "completion_tokens": 0,
    }


def test_base64_embeddings_decode_to_the_same_float32_values():
    vector = [0.123456, -0.987654, 0.0, 1.0, -1e-7]
    answer = {"data": [{"index": 0, "embedding": list(vector)}]}

    encoded = shapes.embeddings(answer, encoding_format="base64")["data"][0]["embedding"]

    decoded = struct.unpack(f"<{len(vector)}f", base64.b64decode(encoded))
    as_float32 = struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector))
    assert decoded == as_float32


def test_chat_answer_reshaped_as_text_completion():
    chat = {
        "id": "c1",
        "created": 9,
        "model": "code",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "return a + b"}, "finish_reason": "model_length"}
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9},
    }

    assert shapes.chat_to_text_completion(chat) == {
        "id": "c1",
        "object": "text_completion",
        "created": 9,
        "model": "code",
        "choices": [{"index": 0, "text": "return a + b", "logprobs": None, "finish_reason": "length"}],
        "usage": chat["usage"],
    }


def test_chat_chunk_reshaped_as_text_chunk():
    chunk = {
        "id": "c1",
        "created": 9,
        "model": "code",
        "choices": [{"index": 0, "delta": {"content": "ret"}, "finish_reason": None}],
    }
    last = {
        **chunk,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }

    assert shapes.chat_chunk_to_text_chunk(chunk) == {
        "id": "c1",
        "object": "text_completion",
        "created": 9,
        "model": "code",
        "choices": [{"index": 0, "text": "ret", "logprobs": None, "finish_reason": None}],
    }
    shaped_last = shapes.chat_chunk_to_text_chunk(last)
    assert shaped_last["choices"][0]["text"] == ""
    assert shaped_last["usage"] == last["usage"]


def test_text_completion_reshaped_as_chat():
    text = {
        "id": "t1",
        "created": 9,
        "model": "code",
        "choices": [{"index": 0, "text": "return a + b", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9},
    }

    chat = shapes.text_completion_to_chat(text)

    assert chat["object"] == "chat.completion"
    assert chat["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "return a + b"}, "finish_reason": "stop"}
    ]
    assert chat["usage"] == text["usage"]


def test_text_chunk_reshaped_as_chat_chunk():
    chunk = {"id": "t1", "created": 9, "model": "code", "choices": [{"index": 0, "text": "ret", "finish_reason": None}]}

    shaped = shapes.text_chunk_to_chat_chunk(chunk)

    assert shaped["object"] == "chat.completion.chunk"
    assert shaped["choices"] == [{"index": 0, "delta": {"content": "ret"}, "finish_reason": None}]
    assert "usage" not in shaped


def test_text_and_chat_reshaping_round_trip():
    chat = shapes.chat_completion(
        {
            "id": "c1",
            "created": 9,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )

    assert shapes.text_completion_to_chat(shapes.chat_to_text_completion(chat)) == chat


def test_mistral_names_win_over_their_openai_twins():
    body = {
        "model": "a",
        "messages": [{"role": "user", "content": "x"}],
        "seed": 1,
        "random_seed": 2,
        "max_completion_tokens": 5,
        "max_tokens": 9,
    }

    payload = to_mistral_chat(body, "m")

    assert (payload["random_seed"], payload["max_tokens"]) == (2, 9)
    assert "seed" not in payload and "max_completion_tokens" not in payload

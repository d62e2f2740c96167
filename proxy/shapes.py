"""Pure functions that give every answer the shape each SDK requires.

The OpenAI SDK, the Mistral SDK (current and legacy 0.4.2) and LangChain parse the same
responses with different strictness; these functions make one shape that satisfies all:
string `content` (never null), an `object` field, embeddings with an `id` and a full `usage`,
`finish_reason` from the set every SDK knows.
"""

import base64
import struct
import time
import uuid
from typing import Any

from proxy.providers.base import Usage

# Mistral's `model_length` means what OpenAI calls `length`; the legacy SDK rejects other values.
FINISH_REASONS = {
    "model_length": "length",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def chat_completion(response: dict[str, Any]) -> dict[str, Any]:
    """Normalise a provider's chat completion in place and return it."""
    response.setdefault("id", new_id("chatcmpl"))
    response["object"] = "chat.completion"
    response.setdefault("created", int(time.time()))
    for choice in response.get("choices") or ():
        message = choice.get("message") or {}
        if message.get("content") is None:
            message["content"] = ""
        message.setdefault("role", "assistant")
        choice["message"] = message
        choice["finish_reason"] = finish_reason(choice.get("finish_reason"))
    return response


def chat_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """Normalise one streamed chat chunk in place and return it."""
    chunk["object"] = "chat.completion.chunk"
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason") is not None:
            choice["finish_reason"] = finish_reason(choice["finish_reason"])
    return chunk


def finish_reason(value: str | None) -> str | None:
    if value is None:
        return None
    return FINISH_REASONS.get(value, value)


def usage_chunk(
    *, chunk_id: str, created: int, model: str, usage: Usage, object_name: str = "chat.completion.chunk"
) -> dict[str, Any]:
    """The final chunk an OpenAI client asks for with stream_options.include_usage."""
    return {
        "id": chunk_id,
        "object": object_name,
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage.as_dict(),
    }


def chat_to_text_completion(response: dict[str, Any]) -> dict[str, Any]:
    """Reshape a chat-shaped answer (Mistral FIM, or chat) as an OpenAI text completion."""
    return {
        "id": response.get("id") or new_id("cmpl"),
        "object": "text_completion",
        "created": response.get("created") or int(time.time()),
        "model": response.get("model", ""),
        "choices": [
            {
                "index": c.get("index", i),
                "text": (c.get("message") or {}).get("content") or "",
                "logprobs": None,
                "finish_reason": finish_reason(c.get("finish_reason")),
            }
            for i, c in enumerate(response.get("choices") or ())
        ],
        "usage": response.get("usage"),
    }


def chat_chunk_to_text_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """Reshape one chat stream chunk as a text-completion stream chunk."""
    return {
        "id": chunk.get("id", ""),
        "object": "text_completion",
        "created": chunk.get("created") or int(time.time()),
        "model": chunk.get("model", ""),
        "choices": [
            {
                "index": c.get("index", i),
                "text": (c.get("delta") or {}).get("content") or "",
                "logprobs": None,
                "finish_reason": finish_reason(c.get("finish_reason")),
            }
            for i, c in enumerate(chunk.get("choices") or ())
        ],
        **({"usage": chunk["usage"]} if chunk.get("usage") else {}),
    }


def embeddings(response: dict[str, Any], *, encoding_format: str | None) -> dict[str, Any]:
    """Normalise an embeddings answer; encode vectors as base64 float32 when the caller asked."""
    response.setdefault("id", new_id("embd"))
    response["object"] = "list"
    usage = response.get("usage") or {}
    usage.setdefault("prompt_tokens", 0)
    usage.setdefault("total_tokens", usage["prompt_tokens"])
    usage.setdefault("completion_tokens", 0)
    response["usage"] = usage
    for item in response.get("data") or ():
        item.setdefault("object", "embedding")
        vector = item.get("embedding")
        if encoding_format == "base64" and isinstance(vector, list):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return response


def text_completion_to_chat(response: dict[str, Any]) -> dict[str, Any]:
    """Reshape an OpenAI text completion as a chat completion (FIM answers are chat-shaped)."""
    return chat_completion(
        {
            "id": response.get("id") or new_id("cmpl"),
            "created": response.get("created") or int(time.time()),
            "model": response.get("model", ""),
            "choices": [
                {
                    "index": c.get("index", i),
                    "message": {"role": "assistant", "content": c.get("text") or ""},
                    "finish_reason": c.get("finish_reason"),
                }
                for i, c in enumerate(response.get("choices") or ())
            ],
            "usage": response.get("usage"),
        }
    )


def text_chunk_to_chat_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """Reshape one text-completion stream chunk as a chat stream chunk."""
    return chat_chunk(
        {
            "id": chunk.get("id", ""),
            "created": chunk.get("created") or int(time.time()),
            "model": chunk.get("model", ""),
            "choices": [
                {
                    "index": c.get("index", i),
                    "delta": {"content": c.get("text") or ""},
                    "finish_reason": c.get("finish_reason"),
                }
                for i, c in enumerate(chunk.get("choices") or ())
            ],
            **({"usage": chunk["usage"]} if chunk.get("usage") else {}),
        }
    )

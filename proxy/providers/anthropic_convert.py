"""OpenAI chat ⇄ Anthropic Messages API, as pure functions (no network here).

Where the Messages API differs from OpenAI's chat:
- system prompts travel apart (`system`), not as messages;
- `max_tokens` is required (the adapter supplies a default, see anthropic.py);
- content is a list of typed blocks: text, image (a base64 or url source), tool_use, tool_result;
- a tool result is a `tool_result` block in a *user* turn, so consecutive tool messages (and a
  user message after them) are merged into one user turn, results first, as Anthropic requires;
- tools are `{name, description, input_schema}`; tool_choice is `auto` / `any` / `none` / `tool`;
- unknown top-level fields are refused, so only the fields below are sent.
"""

import json
import time
from typing import Any

from proxy import shapes
from proxy.exceptions import InvalidRequest
from proxy.providers.base import Body, Usage

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Fields of the Messages API that an OpenAI body may carry under the same name and meaning. OpenAI's
# `metadata` and `service_tier` share a name but not a meaning: they are not sent.
SAME_NAME = ("temperature", "top_p", "top_k", "thinking")
TOOL_CHOICE = {"auto": "auto", "required": "any", "any": "any", "none": "none"}


# --- request --------------------------------------------------------------------------------------


def to_messages_request(body: Body, *, model: str, default_max_tokens: int) -> dict[str, Any]:
    """Return the Messages API body for an OpenAI chat body (without `stream`)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(body["messages"]):
        role = message.get("role")
        if role in ("system", "developer"):
            system += text_blocks(message.get("content"), where=f"messages[{i}]")
        elif role == "user":
            _append(turns, "user", user_blocks(message.get("content"), where=f"messages[{i}]"))
        elif role == "assistant":
            _append(turns, "assistant", assistant_blocks(message, where=f"messages[{i}]"))
        elif role == "tool":
            _append(turns, "user", [tool_result(message, where=f"messages[{i}]")])
        else:
            raise InvalidRequest(
                f"unsupported message role {role!r}", param=f"messages[{i}].role", code="invalid_value"
            )

    request: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens(body) or default_max_tokens,
        "messages": [turn for turn in turns if turn["content"]],
    }
    if system:
        request["system"] = system
    request.update({name: body[name] for name in SAME_NAME if body.get(name) is not None})
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        request["metadata"] = {"user_id": body["user"]}
    request.update(tool_settings(body))
    return request


def max_tokens(body: Body) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if value else None


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks to the conversation, merging into the previous turn when it has the same role."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def text_blocks(content: Any, *, where: str) -> list[dict[str, Any]]:
    """Text blocks of a system or assistant message; blank ones are dropped (Anthropic refuses them)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or a list of parts", param=where, code="invalid_type")
    return [
        _text_block(part) for part in content if isinstance(part, dict) and part.get("type") == "text" and _text(part)
    ]


def user_blocks(content: Any, *, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return text_blocks(content, where=where)
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or a list of parts", param=where, code="invalid_type")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if _text(part):
                blocks.append(_text_block(part))
        elif kind == "image_url":
            blocks.append(image_block(part.get("image_url"), where=where))
        else:
            raise InvalidRequest(
                f"content parts of type {kind!r} are not supported by Anthropic models through Tollgate",
                param=where,
                code="invalid_value",
            )
    return blocks


def _text(part: dict[str, Any]) -> str:
    return str(part.get("text") or "").strip()


def _text_block(part: dict[str, Any]) -> dict[str, Any]:
    block = {"type": "text", "text": str(part.get("text"))}
    if part.get("cache_control"):  # prompt caching, as LiteLLM passes it on
        block["cache_control"] = part["cache_control"]
    return block


def image_block(spec: Any, *, where: str) -> dict[str, Any]:
    """A data URL becomes a base64 source; an http(s) URL a url source, which Anthropic fetches."""
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise InvalidRequest("an image_url part needs a url", param=where, code="invalid_image")
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, _, data = url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64") or not data:
        raise InvalidRequest(
            "an image must be an http(s) URL or a base64 data URL (data:image/png;base64,...)",
            param=where,
            code="invalid_image",
        )
    media_type = header.removeprefix("data:").removesuffix(";base64")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def assistant_blocks(message: dict[str, Any], *, where: str) -> list[dict[str, Any]]:
    blocks = text_blocks(message.get("content"), where=where)
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": function.get("name") or "",
                "input": _arguments(function.get("arguments"), where=where),
            }
        )
    return blocks


def _arguments(arguments: Any, *, where: str) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequest(
            "a tool call's function.arguments must be a JSON object", param=where, code="invalid_value"
        )
    return parsed


def tool_result(message: dict[str, Any], *, where: str) -> dict[str, Any]:
    if not message.get("tool_call_id"):
        raise InvalidRequest("a tool message needs its tool_call_id", param=where, code="missing_field")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": str(message["tool_call_id"])}
    if isinstance(content, list):
        result["content"] = user_blocks(content, where=where)  # text and images
    elif content:
        result["content"] = str(content)
    return result


def tool_settings(body: Body) -> dict[str, Any]:
    """`tools` and `tool_choice` in Anthropic's terms; `parallel_tool_calls: false` disables parallel use."""
    tools = [_tool(tool) for tool in body.get("tools") or () if isinstance(tool, dict)]
    if not tools:
        return {}
    choice = body.get("tool_choice")
    settings: dict[str, Any] = {"tools": tools}
    tool_choice: dict[str, Any] | None = None
    if isinstance(choice, str) and choice in TOOL_CHOICE:
        tool_choice = {"type": TOOL_CHOICE[choice]}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        tool_choice = {"type": "tool", "name": choice["function"]["name"]}
    if body.get("parallel_tool_calls") is False:
        tool_choice = {**(tool_choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if tool_choice:
        settings["tool_choice"] = tool_choice
    return settings


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    spec: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return spec


# --- response -------------------------------------------------------------------------------------


def from_messages_response(response: dict[str, Any]) -> Body:
    """Return the OpenAI chat completion for a Messages API answer."""
    blocks = response.get("content") or []
    text = "".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
    calls = [tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return shapes.chat_completion(
        {
            "id": response.get("id") or shapes.new_id("chatcmpl"),
            "created": int(time.time()),
            "model": response.get("model") or "",
            "choices": [{"index": 0, "message": message, "finish_reason": stop_reason(response.get("stop_reason"))}],
            "usage": usage_dict(response.get("usage")),
        }
    )


def stop_reason(value: str | None) -> str:
    return STOP_REASONS.get(value or "end_turn", "stop")


def tool_call(block: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    arguments = block.get("input")
    call: dict[str, Any] = {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {
            "name": block.get("name") or "",
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
        },
    }
    if index is not None:
        call["index"] = index
    return call


def usage(reported: dict[str, Any] | None) -> Usage:
    """Anthropic's usage as prompt and completion tokens.

    Tokens written to or read from the prompt cache are prompt tokens too (Anthropic counts them
    apart from `input_tokens`); they are billed at the model's input price, see
    docs/providers-azure-anthropic.md.
    """
    reported = reported or {}
    prompt = sum(
        int(reported.get(name) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Usage(prompt, int(reported.get("output_tokens") or 0))


def usage_dict(reported: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI's usage object; cache reads also appear as prompt_tokens_details.cached_tokens."""
    out: dict[str, Any] = usage(reported).as_dict()
    cached = int((reported or {}).get("cache_read_input_tokens") or 0)
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out

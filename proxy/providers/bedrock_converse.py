"""OpenAI chat ⇄ Bedrock Converse / ConverseStream, as pure functions (no network here).

Converse differs from OpenAI's chat where it matters: system prompts travel apart from the
messages; content is a list of blocks (text, image bytes, toolUse, toolResult); tool results are
*user* turns; turns must alternate user/assistant, so consecutive ones of a role are merged; a
blank text block is refused. The stream is a sequence of typed events that is re-emitted as
OpenAI chunks as they come; a tool call's input arrives in fragments and is passed on whole once
its block ends, because the Mistral SDKs parse each streamed tool call as complete.
"""

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from proxy import shapes
from proxy.exceptions import InvalidRequest
from proxy.providers.base import Body, Usage
from proxy.providers.bedrock_content import Image

ImageLoader = Callable[[str], Image]
IdMapper = Callable[[str], str]

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def same(value: str) -> str:
    return value


# --- request --------------------------------------------------------------------------------------


def to_converse_request(body: Body, *, load_image: ImageLoader, tool_id: IdMapper = same) -> dict[str, Any]:
    """Return the keyword arguments of `converse` / `converse_stream` (all but modelId) for a chat body."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in body["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            system += [{"text": text} for text in _texts(message.get("content")) if text.strip()]
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), load_image)
            _append(turns, "user", blocks)
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, tool_id))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, tool_id)])
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages", code="invalid_value")

    request: dict[str, Any] = {"messages": [t for t in turns if t["content"]]}
    if system:
        request["system"] = system
    inference = inference_config(body)
    if inference:
        request["inferenceConfig"] = inference
    tool_config = _tool_config(body, has_tool_blocks=any(_has_tool_blocks(t) for t in turns))
    if tool_config:
        request["toolConfig"] = tool_config
    return request


def inference_config(body: Body) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxTokens"] = int(max_tokens)
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            str(part.get("text") or "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        ]
    raise InvalidRequest("message content must be a string or a list of parts", param="messages", code="invalid_type")


def _user_blocks(content: Any, load_image: ImageLoader) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"text": content}] if content and content.strip() else []
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or a list of parts", param="messages")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if str(part.get("text") or "").strip():
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            if not isinstance(url, str):
                raise InvalidRequest("an image_url part needs a url", param="messages", code="invalid_image")
            image = load_image(url)
            blocks.append({"image": {"format": image.format, "source": {"bytes": image.data}}})
        else:
            raise InvalidRequest(
                f"content parts of type {kind!r} are not supported by Bedrock models through Tollgate",
                param="messages",
                code="invalid_value",
            )
    return blocks


def _assistant_blocks(message: dict[str, Any], tool_id: IdMapper) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"text": t} for t in _texts(message.get("content")) if t.strip()]
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": tool_id(str(call.get("id") or "")),
                    "name": function.get("name"),
                    "input": _arguments(function.get("arguments")),
                }
            }
        )
    return blocks


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        return json.loads(arguments or "{}")
    except (TypeError, ValueError):
        raise InvalidRequest(
            "a tool call's function.arguments must be a JSON object", param="messages", code="invalid_value"
        ) from None


def _tool_result(message: dict[str, Any], tool_id: IdMapper) -> dict[str, Any]:
    if not message.get("tool_call_id"):
        raise InvalidRequest("a tool message needs its tool_call_id", param="messages", code="missing_field")
    text = "\n".join(_texts(message.get("content")))
    return {"toolResult": {"toolUseId": tool_id(message["tool_call_id"]), "content": [{"text": text or " "}]}}


def _has_tool_blocks(turn: dict[str, Any]) -> bool:
    return any("toolUse" in block or "toolResult" in block for block in turn["content"])


def _tool_config(body: Body, *, has_tool_blocks: bool) -> dict[str, Any] | None:
    """Converse's toolConfig; kept even under tool_choice "none" when the history holds tool blocks,
    since Converse refuses tool blocks without it."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or (choice == "none" and not has_tool_blocks):
        return None
    specs = []
    for tool in tools:
        function = tool.get("function") or {}
        spec: dict[str, Any] = {
            "name": function.get("name"),
            "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice in ("required", "any"):
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    return config


# --- response -------------------------------------------------------------------------------------


def from_converse_response(response: dict[str, Any], *, model: str, tool_id: IdMapper = same) -> Body:
    """Return the OpenAI chat completion for a Converse answer."""
    blocks = ((response.get("output") or {}).get("message") or {}).get("content") or []
    text = "".join(block["text"] for block in blocks if "text" in block)
    calls = [_tool_call(block["toolUse"], tool_id) for block in blocks if "toolUse" in block]
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    usage = response.get("usage") or {}
    return shapes.chat_completion(
        {
            "id": shapes.new_id("chatcmpl"),
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": stop_reason(response.get("stopReason"))}],
            "usage": Usage(int(usage.get("inputTokens") or 0), int(usage.get("outputTokens") or 0)).as_dict(),
        }
    )


def stop_reason(value: str | None) -> str:
    return STOP_REASONS.get(value or "end_turn", "stop")


def _tool_call(use: dict[str, Any], tool_id: IdMapper, index: int | None = None) -> dict[str, Any]:
    arguments = use.get("input")
    call: dict[str, Any] = {
        "id": tool_id(str(use.get("toolUseId") or "")),
        "type": "function",
        "function": {
            "name": use.get("name") or "",
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
        },
    }
    if index is not None:
        call["index"] = index
    return call


def converse_chunks(events: Iterable[dict[str, Any]], *, model: str, tool_id: IdMapper = same) -> Iterator[Body]:
    """Re-emit ConverseStream events as OpenAI chunks, each as it arrives.

    The finishing chunk waits for the `metadata` event that follows `messageStop`, so that it can
    carry the usage, as Mistral's last chunk does.
    """
    chunk = ChunkMaker(model)
    finish: str | None = None
    usage: Usage | None = None
    tools: dict[int, dict[str, Any]] = {}  # contentBlockIndex → the tool call being received
    for event in events:
        if "messageStart" in event:
            yield chunk({"role": "assistant", "content": ""})
        elif "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = (start.get("start") or {}).get("toolUse")
            if use:
                tools[start.get("contentBlockIndex", 0)] = {**use, "input": "", "index": len(tools)}
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            part = delta.get("delta") or {}
            if part.get("text"):
                yield chunk({"content": part["text"]})
            elif "toolUse" in part and delta.get("contentBlockIndex", 0) in tools:
                tools[delta.get("contentBlockIndex", 0)]["input"] += part["toolUse"].get("input") or ""
        elif "contentBlockStop" in event:
            use = tools.get(event["contentBlockStop"].get("contentBlockIndex", 0))
            if use is not None:
                use["input"] = use["input"] or "{}"
                yield chunk({"tool_calls": [_tool_call(use, tool_id, use["index"])]})
        elif "messageStop" in event:
            finish = stop_reason(event["messageStop"].get("stopReason"))
        elif "metadata" in event:
            reported = event["metadata"].get("usage") or {}
            usage = Usage(int(reported.get("inputTokens") or 0), int(reported.get("outputTokens") or 0))
    yield chunk({}, finish_reason=finish or "stop", usage=usage)


class ChunkMaker:
    """Builds the OpenAI chunks of one answer: one id and creation time for all of them."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = shapes.new_id("chatcmpl")
        self.created = int(time.time())

    def __call__(self, delta: dict[str, Any], *, finish_reason: str | None = None, usage: Usage | None = None) -> Body:
        chunk: Body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if usage is not None:
            chunk["usage"] = usage.as_dict()
        return chunk

"""OpenAI chat ⇄ Gemini `generateContent`, as pure functions (no network here).

Vertex AI and AI Studio take the same body. Where Gemini differs from OpenAI's chat: system
prompts travel apart (`systemInstruction`); roles are `user` and `model`; content is a list of
parts (text, inlineData, fileData, functionCall, functionResponse); a tool result names its
function, not a call id, so the name is found from the assistant turn that made the call; tool
schemas are an OpenAPI subset that refuses JSON Schema keywords it does not know; sampling
options live in `generationConfig`. Gemini gives tool calls no ids, so Tollgate makes them, and
carries a Gemini 3 `thoughtSignature` inside the id so that it comes back with the call.
"""

import base64
import binascii
import json
import mimetypes
import time
import uuid
from typing import Any

from proxy import shapes
from proxy.exceptions import InvalidRequest
from proxy.providers.base import Body, Usage

# Gemini's finishReason → OpenAI's. Anything unlisted (OTHER, LANGUAGE, ...) ends like a stop.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "any": "ANY"}
# The JSON Schema keywords Gemini's OpenAPI-subset Schema accepts; others are dropped, not sent.
SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "propertyOrdering",
        "default",
        "example",
    }
)
SIGNATURE_MARK = "__thought__"  # call_<hex>__thought__<signature>: the signature rides in the id


# --- request --------------------------------------------------------------------------------------


def to_gemini_request(body: Body) -> dict[str, Any]:
    """Return the generateContent body for an OpenAI- (or Mistral-) shaped chat body."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool-call id → function name, for the tool results that follow
    for message in body["messages"]:
        role = message.get("role")
        if role in ("system", "developer"):
            system += [{"text": text} for text in _texts(message.get("content")) if text.strip()]
        elif role == "user":
            _append(turns, "user", _user_parts(message.get("content")))
        elif role == "assistant":
            _append(turns, "model", _assistant_parts(message, names))
        elif role == "tool":
            _append(turns, "user", [_function_response(message, names)])
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages", code="invalid_value")

    request: dict[str, Any] = {"contents": turns}
    if system:
        request["systemInstruction"] = {"parts": system}
    config = generation_config(body)
    if config:
        request["generationConfig"] = config
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type", "function") == "function"]
    if tools:
        request["tools"] = [{"functionDeclarations": [_declaration(t["function"]) for t in tools]}]
        choice = tool_config(body.get("tool_choice"))
        if choice:
            request["toolConfig"] = choice
    return request


def generation_config(body: Body) -> dict[str, Any]:
    """Sampling options: OpenAI's names (and Mistral's `random_seed`) → generationConfig."""
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = int(max_tokens)
    for openai_name, gemini_name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ):
        if body.get(openai_name) is not None:
            config[gemini_name] = body[openai_name]
    seed = body.get("seed", body.get("random_seed"))
    if seed is not None:
        config["seed"] = seed
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    return config


def tool_config(choice: Any) -> dict[str, Any] | None:
    """OpenAI's tool_choice → Gemini's functionCallingConfig (None: Gemini's default, AUTO)."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in TOOL_MODES:
            raise InvalidRequest(f"unsupported tool_choice {choice!r}", param="tool_choice", code="invalid_value")
        return {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
    name = ((choice or {}).get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise InvalidRequest("tool_choice must name a function", param="tool_choice", code="invalid_value")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def clean_schema(schema: Any) -> Any:
    """Return `schema` in the subset Gemini accepts: unknown keywords dropped, `["x", "null"]` → nullable."""
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = clean_schema(value)
        elif key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if len(kinds) < len(value):
                out["nullable"] = True
        else:
            out[key] = value
    return out


def _response_format(response_format: Any) -> dict[str, Any]:
    if not isinstance(response_format, dict):
        return {}
    kind = response_format.get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema:
            config["responseSchema"] = clean_schema(schema)
        return config
    return {}


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": function.get("name") or ""}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    # Gemini refuses an object schema without properties: a function of no arguments sends none.
    if isinstance(parameters, dict) and parameters.get("properties"):
        declaration["parameters"] = clean_schema(parameters)
    return declaration


def _append(turns: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Add parts as a turn of `role`, merged into the previous turn of the same role.

    Merging keeps parallel tool results in one turn, as Gemini pairs them with the one turn of
    function calls before; an empty turn is refused, so none is sent.
    """
    if not parts:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["parts"].extend(parts)
    else:
        turns.append({"role": role, "parts": list(parts)})


def _texts(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    return [part.get("text") or "" for part in content if isinstance(part, dict) and part.get("type") == "text"]


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(image_part(image.get("url") if isinstance(image, dict) else image))
        else:
            raise InvalidRequest(
                f"content parts of type {kind!r} cannot be sent to Gemini (text and image_url can)",
                param="messages",
                code="invalid_value",
            )
    return parts


def image_part(url: Any) -> dict[str, Any]:
    """A data URL becomes inlineData; any other URL (https://, gs://) fileData, which Google fetches."""
    if not isinstance(url, str) or not url:
        raise InvalidRequest("an image_url part needs a url", param="messages", code="invalid_image")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].split(";")[0] or "application/octet-stream"
        if ";base64" not in header:
            raise InvalidRequest("image data URLs must be base64-encoded", param="messages", code="invalid_image")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                "an image data URL is not valid base64", param="messages", code="invalid_image"
            ) from None
        return {"inlineData": {"mimeType": mime, "data": data}}
    mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _assistant_parts(message: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": text} for text in _texts(message.get("content")) if text]
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name = function.get("name") or ""
        call_id = str(call.get("id") or "")
        names[call_id] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"))}}
        signature = call_id.partition(SIGNATURE_MARK)[2]
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        raise InvalidRequest(
            "tool call arguments must be a JSON object", param="messages", code="invalid_value"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param="messages", code="invalid_value")
    return parsed


def _function_response(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    call_id = str(message.get("tool_call_id") or "")
    name = message.get("name") or names.get(call_id)
    if not name:
        raise InvalidRequest(
            f"the tool message for call {call_id!r} follows no assistant tool call of that id (Gemini needs "
            "the function's name: send the assistant message with its tool_calls, or `name` on the tool message)",
            param="messages",
            code="invalid_value",
        )
    text = "".join(_texts(message.get("content")))
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    # functionResponse.response must be an object: a JSON object result goes as it is, anything else wrapped.
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


# --- response -------------------------------------------------------------------------------------


def from_gemini_response(response: dict[str, Any], *, model: str) -> Body:
    """Return the OpenAI chat completion for a generateContent answer (one choice per candidate)."""
    choices = []
    for index, candidate in enumerate(response.get("candidates") or []):
        text, calls = candidate_content(candidate)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = [{k: v for k, v in call.items() if k != "index"} for call in calls]
        choices.append(
            {
                "index": candidate.get("index", index),
                "message": message,
                "finish_reason": finish_reason(candidate.get("finishReason"), has_calls=bool(calls)),
            }
        )
    return shapes.chat_completion(
        {
            "id": shapes.new_id("chatcmpl"),
            "created": int(time.time()),
            "model": response.get("modelVersion") or model,
            "choices": choices,
            "usage": usage_dict(response.get("usageMetadata")),
        }
    )


def candidate_content(candidate: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Return a candidate's answer text and its tool calls (OpenAI-shaped, each with its `index`).

    Thought parts (`thought: true`, the model's reasoning summary) are not answer text.
    """
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
    calls = [_tool_call(p, i) for i, p in enumerate(p for p in parts if "functionCall" in p)]
    return text, calls


def _tool_call(part: dict[str, Any], index: int) -> dict[str, Any]:
    call = part["functionCall"]
    call_id = call.get("id") or f"call_{uuid.uuid4().hex[:24]}"
    if part.get("thoughtSignature"):
        call_id += SIGNATURE_MARK + part["thoughtSignature"]
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": call.get("name") or "", "arguments": json.dumps(call.get("args") or {})},
    }


def finish_reason(value: str | None, *, has_calls: bool = False) -> str:
    """Gemini answers STOP after function calls too; OpenAI callers expect `tool_calls` then."""
    reason = FINISH_REASONS.get(value or "STOP", "stop")
    return "tool_calls" if has_calls and reason == "stop" else reason


def usage(metadata: dict[str, Any] | None) -> Usage:
    """usageMetadata → Usage. Thinking tokens are billed as output, tool-use prompt tokens as input."""
    metadata = metadata or {}
    prompt = int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + int(metadata.get("thoughtsTokenCount") or 0)
    return Usage(prompt, completion)


def usage_dict(metadata: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = usage(metadata).as_dict()
    thoughts = int((metadata or {}).get("thoughtsTokenCount") or 0)
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def blocked_prompt(response: dict[str, Any]) -> str | None:
    """The reason Gemini refused the prompt itself (no candidates, `promptFeedback.blockReason`), or None."""
    if response.get("candidates"):
        return None
    reason = (response.get("promptFeedback") or {}).get("blockReason")
    return str(reason) if reason else None

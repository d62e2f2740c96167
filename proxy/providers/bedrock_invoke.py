"""OpenAI chat ⇄ InvokeModel bodies of Mistral models on Bedrock, as pure functions.

Two native formats. Mistral's text models (7B, Mixtral, Large 24.02, Small 24.02) take one
prompt in Mistral's instruction format, `<s>[INST] user [/INST] answer</s>[INST] next [/INST]`,
and answer `{"outputs": [{"text", "stop_reason"}]}`. Mistral Large 2 (24.07) and later take
Mistral's chat messages and answer `{"choices": [{"message", "stop_reason"}]}`. Streams send the
same shapes chunk by chunk; the last chunk carries `amazon-bedrock-invocationMetrics` (the token
counts); a non-streamed answer has them in the `x-amzn-bedrock-*-token-count` headers.
"""

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from proxy import shapes
from proxy.exceptions import InvalidRequest
from proxy.providers.base import Body, Usage
from proxy.providers.bedrock_converse import ChunkMaker, IdMapper, same

METRICS = "amazon-bedrock-invocationMetrics"
FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "model_length": "length"}
MISTRAL_TOOL_CHOICES = {"auto": "auto", "none": "none", "any": "any", "required": "any"}


# --- Mistral's instruction prompt (text models) ---------------------------------------------------


def to_prompt_body(body: Body) -> dict[str, Any]:
    """Return the InvokeModel body of a Mistral text model for a chat body."""
    payload: dict[str, Any] = {"prompt": mistral_prompt(body["messages"])}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        payload["max_tokens"] = int(max_tokens)
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = body.get("stop")
    if stop:
        payload["stop"] = [stop] if isinstance(stop, str) else list(stop)
    return payload


def mistral_prompt(messages: list[dict[str, Any]]) -> str:
    """Render a conversation in Mistral's instruction format; system text opens the first user turn.

    `<s>[INST] {system}\\n\\n{user} [/INST] {assistant}</s>[INST] {user} [/INST]`. A final assistant
    message is left open, so the model continues it.
    """
    system = "\n\n".join(_text(m) for m in messages if m.get("role") in ("system", "developer") and _text(m))
    turns: list[tuple[str, str]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        if role == "tool" or message.get("tool_calls"):
            raise _unsupported("tool calls")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"unsupported message role {role!r}", param="messages", code="invalid_value")
        text = _text(message)
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{text}")
        else:
            turns.append((role, text))
    if system:
        if turns and turns[0][0] == "user":
            turns[0] = ("user", f"{system}\n\n{turns[0][1]}")
        else:
            turns.insert(0, ("user", system))
    prompt = "<s>"
    for i, (role, text) in enumerate(turns):
        if role == "user":
            prompt += f"[INST] {text} [/INST]"
        else:
            prompt += f" {text}" + ("" if i == len(turns) - 1 else "</s>")
    return prompt


def from_prompt_response(answer: dict[str, Any], *, model: str, usage: Usage) -> Body:
    outputs = answer.get("outputs") or [{}]
    return _completion(
        model,
        {"role": "assistant", "content": "".join(str(o.get("text") or "") for o in outputs)},
        outputs[-1].get("stop_reason"),
        usage,
    )


# --- Mistral's chat messages (Large 2 and later) -------------------------------------------------


def to_messages_body(body: Body, *, tool_id: IdMapper = same) -> dict[str, Any]:
    """Return the InvokeModel body of a Mistral chat model (Large 24.07) for a chat body."""
    payload: dict[str, Any] = {"messages": [_mistral_message(m, tool_id) for m in body["messages"]]}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        payload["max_tokens"] = int(max_tokens)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            payload[name] = body[name]
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools:
        if isinstance(choice, dict):  # a named function: only that tool, and it must be called
            named = (choice.get("function") or {}).get("name")
            tools = [t for t in tools if (t.get("function") or {}).get("name") == named] or tools
            choice = "any"
        payload["tools"] = [{"type": "function", "function": t.get("function") or {}} for t in tools]
        if isinstance(choice, str) and choice in MISTRAL_TOOL_CHOICES:
            payload["tool_choice"] = MISTRAL_TOOL_CHOICES[choice]
    return payload


def _mistral_message(message: dict[str, Any], tool_id: IdMapper) -> dict[str, Any]:
    role = "system" if message.get("role") == "developer" else message.get("role")
    if isinstance(message.get("content"), list) and any(
        isinstance(p, dict) and p.get("type") != "text" for p in message["content"]
    ):
        raise _unsupported("image or other non-text content parts (use bedrock/converse/... for images)")
    out: dict[str, Any] = {"role": role, "content": _text(message)}
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": tool_id(str(call.get("id") or "")),
                "function": {
                    "name": (call.get("function") or {}).get("name"),
                    "arguments": (call.get("function") or {}).get("arguments") or "{}",
                },
            }
            for call in message["tool_calls"]
        ]
    if role == "tool":
        out["tool_call_id"] = tool_id(str(message.get("tool_call_id") or ""))
    return out


def from_messages_response(answer: dict[str, Any], *, model: str, usage: Usage, tool_id: IdMapper = same) -> Body:
    choice = (answer.get("choices") or [{}])[0]
    message = _message(choice.get("message") or {}, tool_id)
    return _completion(model, message, choice.get("stop_reason"), usage)


def _message(message: dict[str, Any], tool_id: IdMapper, *, index: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [
            {
                **({"index": i} if index else {}),
                "id": tool_id(str(call.get("id") or "")),
                "type": "function",
                "function": {
                    "name": (call.get("function") or {}).get("name") or "",
                    "arguments": _arguments_text((call.get("function") or {}).get("arguments")),
                },
            }
            for i, call in enumerate(calls)
        ]
    return out


# --- both formats ---------------------------------------------------------------------------------


def invoke_chunks(payloads: Iterable[bytes], *, model: str, tool_id: IdMapper = same) -> Iterator[Body]:
    """Re-emit InvokeModelWithResponseStream chunks (either format) as OpenAI chunks as they come.

    The finishing chunk is held until the stream ends, so it can carry the usage from the
    invocation metrics, which may arrive on the same chunk or a later one.
    """
    chunk = ChunkMaker(model)
    finish: str | None = None
    usage: Usage | None = None
    started = False
    for payload in payloads:
        data = orjson.loads(payload)
        if not started:
            started = True
            yield chunk({"role": "assistant", "content": ""})
        if "outputs" in data:
            for output in data["outputs"]:
                if output.get("text"):
                    yield chunk({"content": output["text"]})
                finish = output.get("stop_reason") or finish
        for choice in data.get("choices") or ():
            delta = _message(choice.get("message") or choice.get("delta") or {}, tool_id, index=True)
            delta.pop("role")
            if delta.get("content") or delta.get("tool_calls"):
                yield chunk(delta)
            finish = choice.get("stop_reason") or choice.get("finish_reason") or finish
        if METRICS in data:
            metrics = data[METRICS]
            usage = Usage(int(metrics.get("inputTokenCount") or 0), int(metrics.get("outputTokenCount") or 0))
    yield chunk({}, finish_reason=FINISH.get(finish or "stop", "stop"), usage=usage)


def usage_from_headers(headers: dict[str, str]) -> Usage:
    return Usage(
        int(headers.get("x-amzn-bedrock-input-token-count") or 0),
        int(headers.get("x-amzn-bedrock-output-token-count") or 0),
    )


def _completion(model: str, message: dict[str, Any], stop: str | None, usage: Usage) -> Body:
    return shapes.chat_completion(
        {
            "id": shapes.new_id("chatcmpl"),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": FINISH.get(stop or "stop", "stop")}],
            "usage": usage.as_dict(),
        }
    )


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _unsupported("image or other non-text content parts (use bedrock/converse/... for images)")
            parts.append(str(part.get("text") or ""))
        return "\n".join(parts)
    raise InvalidRequest("message content must be a string or a list of parts", param="messages", code="invalid_type")


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()


def _unsupported(what: str) -> InvalidRequest:
    return InvalidRequest(
        f"this Bedrock model, called through InvokeModel, does not support {what}",
        param="messages",
        code="unsupported_content",
    )

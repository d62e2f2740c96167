"""What the fake Bedrock says, and what it refuses, in AWS's shapes: pure functions of the request body.

The checks are the ones Bedrock-Mistral makes that a gateway can get wrong (turn order, blank
text, 9-character tool-call ids, tool results without a matching call); the answers are the
Converse body, the ConverseStream event sequence and Mistral's two InvokeModel formats.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
from typing import Any

from .scripted import _Script

MISTRAL_TOOL_ID = re.compile(r"[A-Za-z0-9]{9}")
IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
Event = tuple[str, dict, float]  # event type, payload, delay before it


# -- checks Bedrock makes ------------------------------------------------------------------------


def converse_problem(model: str, body: dict) -> str | None:
    messages = body.get("messages")
    if not messages:
        return "A conversation must start with a user message."
    expected = "user"
    tool_uses: set[str] = set()
    for turn in messages:
        if turn.get("role") != expected:
            return "A conversation must alternate between user and assistant roles."
        expected = "assistant" if expected == "user" else "user"
        for block in turn.get("content") or []:
            if "text" in block and not str(block["text"]).strip():
                return "The text field in the ContentBlock object is blank."
            if "image" in block:
                image = block["image"]
                if image.get("format") not in IMAGE_FORMATS:
                    return "The image format is not supported."
                base64.b64decode(image["source"]["bytes"])
            use = block.get("toolUse") or block.get("toolResult")
            if use is not None:
                if not body.get("toolConfig"):
                    return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                if "mistral" in model and not MISTRAL_TOOL_ID.fullmatch(use.get("toolUseId", "")):
                    return "Tool call id has to be 9 characters long and alphanumeric (a-z, A-Z, 0-9)."
                if "toolUse" in block:
                    tool_uses.add(use["toolUseId"])
                elif use["toolUseId"] not in tool_uses:
                    return f"toolResult id {use['toolUseId']} matches no toolUse id in the previous turns."
    if body.get("system") and ("7b" in model or "mixtral" in model):
        return "This model doesn't support system messages."
    return None


def invoke_problem(model: str, body: dict) -> str | None:
    if "messages" in body:
        if "large-2407" not in model and "pixtral" not in model:
            return f"Malformed input request: #: extraneous key [messages] is not permitted (model {model})"
        for message in body["messages"]:
            for call in message.get("tool_calls") or []:
                if not MISTRAL_TOOL_ID.fullmatch(call.get("id", "")):
                    return "Tool call id has to be 9 characters long and alphanumeric."
            if message.get("role") == "tool" and not MISTRAL_TOOL_ID.fullmatch(message.get("tool_call_id", "")):
                return "Tool call id has to be 9 characters long and alphanumeric."
        return None
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return "Malformed input request: #: required key [prompt] not found"
    if not prompt.startswith("<s>[INST]"):
        return "The prompt must use Mistral's instruction format"
    return None


# -- what the model says -------------------------------------------------------------------------


def default(op: str, body: dict) -> _Script:
    """A plausible, deterministic answer to any of the four operations' bodies."""
    if "prompt" in body:
        last = body["prompt"].rsplit("[INST]", 1)[-1].removesuffix("[/INST]").strip()
        return _Script(chunks=_words(f"Echo: {last}"), prompt_tokens=len(body["prompt"].split()))
    turns = body["messages"]
    prompt_tokens = sum(len(json.dumps(t).split()) for t in turns)
    last = turns[-1]
    blocks = last.get("content")
    if isinstance(blocks, str) or blocks is None:  # Mistral's messages format
        blocks = [{"text": blocks or ""}]
    images = [b["image"] for b in blocks if "image" in b]
    results = [b["toolResult"] for b in blocks if "toolResult" in b]
    text = " ".join(str(b.get("text", "")) for b in blocks if "text" in b)
    if last.get("role") == "tool":
        results = [{"content": [{"text": last.get("content", "")}]}]
    if images:
        sizes = ", ".join(f"{i['format']} ({len(base64.b64decode(i['source']['bytes']))} bytes)" for i in images)
        return _Script(chunks=_words(f"I see an image: {sizes}"), prompt_tokens=prompt_tokens)
    if results:
        said = " ".join(c.get("text", "") for r in results for c in r.get("content", []))
        return _Script(chunks=_words(f"The tool says: {said}"), prompt_tokens=prompt_tokens)
    tools = _tools(body)
    choice = body.get("toolConfig", {}).get("toolChoice") or body.get("tool_choice")
    forced = (isinstance(choice, dict) and ("any" in choice or "tool" in choice)) or choice == "any"
    if tools and (forced or "weather" in text.lower()):
        named = choice.get("tool", {}).get("name") if isinstance(choice, dict) else None
        tool = next((t for t in tools if t["name"] == named), tools[0])
        call = {"id": None, "name": tool["name"], "input": _arguments(tool["schema"])}
        return _Script(chunks=[""], tool_calls=[call], prompt_tokens=prompt_tokens, finish_reason="tool_use")
    return _Script(chunks=_words(f"Echo: {text}"), prompt_tokens=prompt_tokens)


def _tools(body: dict) -> list[dict]:
    if "toolConfig" in body:
        return [
            {"name": t["toolSpec"]["name"], "schema": t["toolSpec"]["inputSchema"]["json"]}
            for t in body["toolConfig"].get("tools", [])
        ]
    return [
        {"name": t["function"]["name"], "schema": t["function"].get("parameters") or {}} for t in body.get("tools", [])
    ]


def _arguments(schema: dict) -> dict:
    properties = schema.get("properties") or {}
    samples = {"string": "Paris", "number": 1, "integer": 1, "boolean": True}
    return {n: samples.get(properties.get(n, {}).get("type"), "Paris") for n in schema.get("required") or properties}


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [""]


def tokens(plan: _Script) -> tuple[int, int]:
    completion = plan.completion_tokens
    if completion is None:
        completion = len([c for c in plan.chunks if c]) + 12 * len(plan.tool_calls)
    return plan.prompt_tokens or 0, completion


def _tool_use_id() -> str:
    return "tooluse_" + "".join(random.choices(string.ascii_letters + string.digits, k=22))


def _mistral_id() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=9))


def _stop(plan: _Script) -> str:
    if plan.finish_reason in (None, "stop"):
        return "tool_use" if plan.tool_calls else "end_turn"
    return {"length": "max_tokens", "tool_calls": "tool_use"}.get(plan.finish_reason, plan.finish_reason)


# -- Converse ------------------------------------------------------------------------------------


def converse(plan: _Script) -> dict:
    prompt, completion = tokens(plan)
    content: list[dict] = [{"text": "".join(plan.chunks)}] if "".join(plan.chunks) else []
    content += [
        {"toolUse": {"toolUseId": c["id"] or _tool_use_id(), "name": c["name"], "input": c["input"]}}
        for c in plan.tool_calls
    ]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop(plan),
        "usage": {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion},
        "metrics": {"latencyMs": 42},
    }


def converse_events(plan: _Script) -> list[Event]:
    """(event type, payload, delay before it) for one answer, in AWS's order."""
    prompt, completion = tokens(plan)
    events: list[Event] = [("messageStart", {"role": "assistant"}, 0.0)]
    index = 0
    texts = [c for c in plan.chunks if c]
    if texts:
        events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}, plan.delay) for t in texts]
        events.append(("contentBlockStop", {"contentBlockIndex": 0}, 0.0))
        index = 1
    for call in plan.tool_calls:
        start = {"toolUse": {"toolUseId": call["id"] or _tool_use_id(), "name": call["name"]}}
        arguments = json.dumps(call["input"])
        half = len(arguments) // 2
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}, 0.0))
        for part in (arguments[:half], arguments[half:]):
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}}, 0))
        events.append(("contentBlockStop", {"contentBlockIndex": index}, 0.0))
        index += 1
    events.append(("messageStop", {"stopReason": _stop(plan)}, 0.0))
    usage = {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 42}}, 0.0))
    return events


# -- InvokeModel (Mistral's native formats) ------------------------------------------------------


def invoke_answer(plan: _Script, native: str) -> dict:
    text = "".join(plan.chunks)
    if native == "prompt":
        return {"outputs": [{"text": text, "stop_reason": "length" if plan.finish_reason == "length" else "stop"}]}
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if plan.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"] or _mistral_id(), "function": {"name": c["name"], "arguments": json.dumps(c["input"])}}
            for c in plan.tool_calls
        ]
    stop = "tool_calls" if plan.tool_calls else ("length" if plan.finish_reason == "length" else "stop")
    return {
        "id": uuid.uuid4().hex,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "stop_reason": stop}],
    }


def invoke_events(plan: _Script, native: str) -> list[Event]:
    """`chunk` events, each the model's native JSON base64-encoded; the last carries the metrics."""
    prompt, completion = tokens(plan)
    pieces: list[dict] = []
    for text in (c for c in plan.chunks if c):
        if native == "prompt":
            pieces.append({"outputs": [{"text": text, "stop_reason": None}]})
        else:
            pieces.append(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "stop_reason": None}]}
            )
    final = invoke_answer(_Script(chunks=[""], tool_calls=plan.tool_calls, finish_reason=plan.finish_reason), native)
    if native == "prompt":
        final["outputs"][0]["text"] = ""
    final["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": prompt,
        "outputTokenCount": completion,
        "invocationLatency": 42,
        "firstByteLatency": 7,
    }
    pieces.append(final)
    return [("chunk", {"bytes": base64.b64encode(json.dumps(p).encode()).decode()}, plan.delay) for p in pieces]

"""A fake Anthropic Messages API for tests: Anthropic's wire format on 127.0.0.1, scripted by each test.

It checks what api.anthropic.com checks where a gateway can go wrong: the `x-api-key` and
`anthropic-version` headers; `max_tokens` present; no unknown top-level field (`stream_options`,
`n`, `tool_choice: "required"` are refused, as Anthropic refuses them); only user and assistant
turns (a system prompt belongs in `system`); no blank text blocks; image sources well formed; and
every `tool_result` answering a `tool_use` of the turn before. Streams are Anthropic's named SSE
events (`event: message_start` / `data: {...}`), with a `ping`, text deltas, tool inputs in
`input_json_delta` fragments, and the usage split between message_start and message_delta.

    with FakeAnthropic.running() as fake:
        fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)
        ...  # api_base: fake.url (or fake.root), api_key: FakeAnthropic.API_KEY
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from typing import Any

from .mistral import _arguments, _words
from .scripted import ScriptedFake, _Answer, _Handler, _Script

VERSION = "2023-06-01"
FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
    }
)
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
MESSAGES = {
    "invalid_request_error": "There was an issue with the format or content of your request.",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: claude-nonexistent",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


def error_body(kind: str, message: str | None = None) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message or MESSAGES.get(kind, kind)}}


class FakeAnthropic(ScriptedFake):
    """Anthropic's Messages API; with nothing queued it echoes the last user text (or calls a tool,
    see `_default`). Cache tokens of the next answer: `reply(...)` then `cache_tokens(write, read)`."""

    API_KEY = "sk-ant-fake-0123456789abcdef"

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        function = spec.get("function", spec)
        arguments = function.get("arguments", {})
        return {
            "type": "tool_use",
            "id": spec.get("id") or f"toolu_{_alnum(24)}",
            "name": function["name"],
            "input": json.loads(arguments) if isinstance(arguments, str) else arguments,
        }

    def error(self, kind: str, message: str | None = None, *, status: int | None = None) -> None:
        """Fail the next request with Anthropic's error `kind` (e.g. "overloaded_error" → HTTP 529)."""
        code = status or next((s for s, k in STATUS_TYPES.items() if k == kind), 500)
        self.fail(code, error_body(kind, message))

    def error_mid_stream(self, after_chunks: int, kind: str = "overloaded_error", message: str | None = None) -> None:
        """Stream `after_chunks` text deltas, then an `error` event, then end the body (as Anthropic does)."""
        self._queue("chat", _Script(kind="cut", after_chunks=after_chunks, body=error_body(kind, message)))

    def cache_tokens(self, creation: int, read: int) -> None:
        """Report these prompt-cache tokens with the last queued reply."""
        with self._lock:
            self._scripts["chat"][-1].headers = {"creation": str(creation), "read": str(read)}

    # -- serving ------------------------------------------------------------------------------

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        if h.headers.get("x-api-key") != self.api_key:
            return 401, error_body("authentication_error"), None
        if h.headers.get("anthropic-version") != VERSION:
            return 400, error_body("invalid_request_error", "anthropic-version: header is required"), None
        if (h.command, path) != ("POST", "/v1/messages"):
            return 404, error_body("not_found_error", "Not Found"), None

        early = self._pop("chat", "fail", "hang")
        if early and early.kind == "fail":
            kind = STATUS_TYPES.get(early.status, "api_error")
            return early.status, error_body(kind) if early.body is None else early.body, early.headers
        if early and self._server.stopping.wait(early.seconds):
            h.drop_connection()
            return None

        if problem := invalid(body, bad_json):
            return 400, error_body("invalid_request_error", problem), None
        script = None if early else self._pop("chat", "reply", "cut")
        cut, error = (script.after_chunks, script.body) if script and script.kind == "cut" else (None, None)
        plan = script if script and script.kind == "reply" else _default(body)
        message = _message(body, plan)
        if not body.get("stream"):
            return 200, message, None
        _stream(h, message, plan, cut, error)
        return None


def _alnum(n: int) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=n))


def invalid(body: Any, bad_json: ValueError | None) -> str | None:
    """Anthropic's 400 message for the mistakes a gateway could make, else None."""
    if bad_json is not None or not isinstance(body, dict):
        return "There was an issue with the format or content of your request. We were unable to parse it as JSON."
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return f"{field}: Field required"
    extra = sorted(set(body) - FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be a valid integer greater than or equal to 1"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
    ):
        return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
    for tool in body.get("tools") or []:
        if "input_schema" not in tool or "name" not in tool:
            return "tools.0.custom.input_schema: Field required"
    for block in body.get("system") or [] if isinstance(body.get("system"), list) else []:
        if block.get("type") != "text" or not str(block.get("text") or "").strip():
            return "system: text content blocks must be non-empty"
    previous_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f'messages.{i}.role: Input should be "user" or "assistant"'
        if problem := _invalid_content(i, message, previous_uses):
            return problem
        previous_uses = {b["id"] for b in _blocks(message) if b.get("type") == "tool_use"}
        following = messages[i + 1] if i + 1 < len(messages) else None
        answered = {b.get("tool_use_id") for b in _blocks(following or {}) if b.get("type") == "tool_result"}
        if previous_uses - answered and following is not None:
            return (
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(previous_uses - answered))}"
            )
    return None


def _blocks(message: dict) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _invalid_content(i: int, message: dict, previous_uses: set[str]) -> str | None:
    content = message.get("content")
    if isinstance(content, str):
        return None if content else f"messages.{i}: all messages must have non-empty content"
    if not isinstance(content, list) or not content:
        return f"messages.{i}: all messages must have non-empty content"
    seen_other = False
    for j, block in enumerate(content):
        kind = block.get("type")
        where = f"messages.{i}.content.{j}"
        if kind == "text" and not str(block.get("text") or "").strip():
            return "messages: text content blocks must be non-empty"
        if kind == "image":
            source = block.get("source") or {}
            if source.get("type") == "base64" and source.get("media_type") not in MEDIA_TYPES:
                return f"{where}.image.source.base64.media_type: Input should be {', '.join(map(repr, MEDIA_TYPES))}"
            if source.get("type") == "url" and not str(source.get("url", "")).startswith(("http://", "https://")):
                return f"{where}.image.source.url: invalid url"
            if source.get("type") not in ("base64", "url"):
                return f"{where}.image.source: Input tag does not match any of the expected tags: 'base64', 'url'"
        if kind == "tool_result":
            if message["role"] != "user":
                return f"{where}: tool_result blocks are only allowed in user messages"
            if block.get("tool_use_id") not in previous_uses:
                return (
                    f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )
            if seen_other:
                return f"{where}: tool_result blocks must come first in the user message"
        else:
            seen_other = True
        if kind == "tool_use" and message["role"] != "assistant":
            return f"{where}: tool_use blocks are only allowed in assistant messages"
        if kind not in ("text", "image", "tool_use", "tool_result", "document", "thinking"):
            return f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text") or "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def _default(body: dict) -> _Script:
    """A call to the first tool (or the one tool_choice names) when tool_choice is "any" or "tool", or
    when the last user text asks about the weather; after a tool result, a summary of it; when the
    last turn holds images, how many and of which source; otherwise "Echo: <last user text>"."""
    messages = body["messages"]
    prompt_tokens = sum(len(_text(m.get("content")).split()) or 1 for m in messages) + 2 * len(messages)
    last = messages[-1]
    blocks = _blocks(last)
    choice = body.get("tool_choice") or {"type": "auto"}
    tools = body.get("tools") or []
    results = [b for b in blocks if b.get("type") == "tool_result"]
    wants_tool = choice["type"] in ("any", "tool") or (
        choice["type"] == "auto" and not results and "weather" in _text(last.get("content")).lower()
    )
    if tools and wants_tool:
        tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
        call = FakeAnthropic.make_tool_call(
            {"name": tool["name"], "arguments": _arguments({"parameters": tool["input_schema"]})}
        )
        return _Script(tool_calls=[call], prompt_tokens=prompt_tokens, completion_tokens=12)
    images = [b["source"]["type"] for b in blocks if b.get("type") == "image"]
    if results:
        text = f"The tool returned: {_text(results[0].get('content'))}"
    elif images:
        text = f"I see {len(images)} image(s) from {', '.join(images)}."
    else:
        text = f"Echo: {_text(last.get('content'))}"
    return _Script(chunks=_words(text), prompt_tokens=prompt_tokens)


def _usage(plan: _Script) -> dict:
    completion = plan.completion_tokens
    if completion is None:
        completion = len([c for c in plan.chunks if c]) + 12 * len(plan.tool_calls)
    cache = plan.headers or {}
    return {
        "input_tokens": plan.prompt_tokens or 0,
        "cache_creation_input_tokens": int(cache.get("creation", 0)),
        "cache_read_input_tokens": int(cache.get("read", 0)),
        "output_tokens": completion,
    }


def _stop_reason(plan: _Script) -> str:
    return plan.finish_reason or ("tool_use" if plan.tool_calls else "end_turn")


def _message(body: dict, plan: _Script) -> dict:
    text = "".join(plan.chunks)
    content = ([{"type": "text", "text": text}] if text else []) + list(plan.tool_calls)
    return {
        "id": f"msg_{_alnum(24)}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": _stop_reason(plan),
        "stop_sequence": None,
        "usage": _usage(plan),
    }


def _send(h: _Handler, event: str, data: dict) -> None:
    """One named SSE event in its own HTTP chunk, flushed so the client sees it at once."""
    payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    h.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
    h.wfile.flush()


def _stream(h: _Handler, message: dict, plan: _Script, cut: int | None, error: dict | None) -> None:
    """Anthropic's event sequence; with `cut`, stop after that many text deltas (then the error event
    and a clean end when there is one, else a dropped connection)."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    h.start_sse()
    _send(h, "message_start", {"type": "message_start", "message": start})
    _send(h, "ping", {"type": "ping"})
    index = 0
    if plan.chunks and "".join(plan.chunks):
        _send(
            h,
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        for sent, piece in enumerate(plan.chunks):
            if sent == cut:
                return _end_cut(h, error)
            if plan.delay and sent:
                time.sleep(plan.delay)
            delta = {"type": "text_delta", "text": piece}
            _send(h, "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        _send(h, "content_block_stop", {"type": "content_block_stop", "index": 0})
        index = 1
    if cut is not None:
        return _end_cut(h, error)
    for call in plan.tool_calls:
        block = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}
        _send(h, "content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        for part in re.findall(r"\w+|\W+", json.dumps(call["input"])):
            delta = {"type": "input_json_delta", "partial_json": part}
            _send(h, "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        _send(h, "content_block_stop", {"type": "content_block_stop", "index": index})
        index += 1
    final = {"output_tokens": usage["output_tokens"]}
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    _send(h, "message_delta", {"type": "message_delta", "delta": delta, "usage": final})
    _send(h, "message_stop", {"type": "message_stop"})
    h.end_sse()


def _end_cut(h: _Handler, error: dict | None) -> None:
    if error is None:
        return h.drop_connection()
    _send(h, "error", error)
    h.end_sse()

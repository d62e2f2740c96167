"""A fake Mistral AI API for tests: the real wire format on 127.0.0.1, scripted by each test.

Tests talk to it over real HTTP (STYLE.md §10: providers are replaced by local servers, never by
patching our code), so the gateway, LiteLLM and the SDKs meet what they meet in production:
keep-alive, Content-Length JSON, chunked Server-Sent Events with `usage` on the last chunk, 422 for
unknown fields (see mistral_schema.py), 401 for a wrong key, and upstream failures on demand
(`fail`, `hang`, `cut_stream`). Response shapes follow Mistral's API reference and the `mistralai`
SDK response models; NOTES.md lists what each SDK needs.

    with FakeMistral.running() as fake:
        fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)
        ...  # point the gateway at fake.url, then assert on fake.requests
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import string
import time
import uuid
from typing import Any
from urllib.parse import unquote

from . import mistral_schema as schema
from .scripted import ScriptedFake, _Answer, _Handler, _Script

FIM_TEXT = "return a + b"
EMBEDDING_DIMS = 8

# path -> (method, endpoint name used by the scripting methods); /v1/models/{id} is "model".
ROUTES = {
    "/v1/chat/completions": ("POST", "chat"),
    "/v1/fim/completions": ("POST", "fim"),
    "/v1/embeddings": ("POST", "embeddings"),
    "/v1/models": ("GET", "models"),
}
VALIDATORS = {
    "chat": schema.validate_chat,
    "fim": schema.validate_fim,
    "embeddings": schema.validate_embeddings,
}

# What `fail()` sends unless the test gives a body: the 429 is as seen from api.mistral.ai, the
# others are approximated in the same envelope.
ERROR_BODIES = {
    400: ("Invalid request", "invalid_request_error", None),
    429: ("Rate limit exceeded", "rate_limited", "1300"),
    500: ("Internal server error", "internal_server_error", "1000"),
    502: ("Bad gateway", "internal_server_error", "1000"),
    503: ("Service unavailable", "service_unavailable", "1000"),
    504: ("Gateway timeout", "internal_server_error", "1000"),
}


class FakeMistral(ScriptedFake):
    """A Mistral-compatible server; queue behaviours with reply/reply_stream/fail/hang/cut_stream.

    Each queued behaviour answers the next request to its endpoint ("chat", "fim", "embeddings",
    "models", "model"). `fail` and `hang` act before validation, like an overloaded upstream;
    `reply` and `cut_stream` are consumed only by a valid request. With nothing queued, chat echoes
    the last user message (or calls a tool, see `_default`). A reply queued as a stream answers a
    non-streaming request as one JSON body, and the other way round.
    """

    API_KEY = "fake-mistral-key"

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        return _tool_call(spec)

    # -- serving ------------------------------------------------------------------------------

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        """The JSON answer (status, payload, headers), or None once a stream or a hang went on the wire."""
        if not path.startswith("/v1/"):
            return 404, {"detail": "Not Found"}, None
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, _error(401), None
        is_card = path.startswith("/v1/models/")
        method, endpoint = ROUTES.get(path, ("GET", "model") if is_card else ("", ""))
        if not endpoint:
            return 404, {"detail": "Not Found"}, None
        if h.command != method:
            return 405, {"detail": "Method Not Allowed"}, None

        early = self._pop(endpoint, "fail", "hang")
        if early and early.kind == "fail":
            return early.status, _error(early.status) if early.body is None else early.body, early.headers
        if early and self._server.stopping.wait(early.seconds):
            h.drop_connection()
            return None

        if endpoint == "models":
            return 200, {"object": "list", "data": schema.MODELS}, None
        if endpoint == "model":
            model_id = unquote(path.removeprefix("/v1/models/"))
            card = next((c for c in schema.MODELS if c["id"] == model_id), None)
            return (
                (200, card, None)
                if card
                else (404, _error(404, f"Model '{model_id}' not found", "invalid_model", "1500"), None)
            )

        if errors := schema.body_errors(body, bad_json) or VALIDATORS[endpoint](body):
            return 422, schema.error_body(errors), None
        if endpoint == "chat" and (message := schema.last_role_error(body["messages"])):
            return 400, _error(400, message), None

        script = None if early else self._pop(endpoint, "reply", "cut")
        if endpoint == "embeddings":
            return 200, _embeddings(body, script), None
        cut = script.after_chunks if script and script.kind == "cut" else None
        plan = script if script and script.kind == "reply" else _default(endpoint, body)
        if body.get("stream"):
            _stream(h, body["model"], plan, cut_after=cut)
        elif cut is not None:
            h.send_truncated_json(200, _completion(body["model"], plan))
        else:
            return 200, _completion(body["model"], plan), None
        return None


def _error(status: int, message: str | None = None, kind: str | None = None, code: str | None = None) -> dict:
    default = ERROR_BODIES.get(status, ("Error", "invalid_request_error", None))
    if status == 401:
        return {"message": "Unauthorized", "request_id": uuid.uuid4().hex}
    return {
        "object": "error",
        "message": message or default[0],
        "type": kind or default[1],
        "param": None,
        "code": code or default[2],
    }


def _tool_call(spec: dict) -> dict:
    function = spec.get("function", spec)
    arguments = function.get("arguments", {})
    return {
        "id": spec.get("id") or "".join(random.choices(string.ascii_letters + string.digits, k=9)),
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


def _text(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list (None if it has none)."""
    if isinstance(content, str):
        return content
    texts = [p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text"]
    return " ".join(texts) if texts else None


def _words(text: str) -> list[str]:
    """Split text into stream chunks that join back to it: "a b" -> ["a", " b"]."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text)


def _default(endpoint: str, body: dict) -> _Script:
    """What Mistral would plausibly say, deterministically.

    Chat: a tool call to the first tool (or the one `tool_choice` names) when tool_choice is "any",
    "required" or a function, or when the user asks about the weather; after a tool message, a summary
    of its result; otherwise "Echo: <last user text>". Tokens are counted as whitespace-separated
    words (plus 2 per message in the prompt).
    """
    if endpoint == "fim":
        return _Script(chunks=_words(FIM_TEXT), prompt_tokens=len(body["prompt"].split()) + 1)
    messages = body["messages"]
    prompt_tokens = sum(len((_text(m.get("content")) or "x").split()) for m in messages) + 2 * len(messages)
    last, tools, choice = messages[-1], body.get("tools") or [], body.get("tool_choice") or "auto"
    last_text = _text(last.get("content"))
    named = choice["function"]["name"] if isinstance(choice, dict) else None
    wants_tool = (
        named
        or choice in ("any", "required")
        or (choice == "auto" and last["role"] == "user" and "weather" in (last_text or "").lower())
    )
    if tools and wants_tool:
        functions = [t["function"] for t in tools]
        function = next((f for f in functions if f["name"] == named), functions[0])
        return _Script(
            tool_calls=[_tool_call({"name": function["name"], "arguments": _arguments(function)})],
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=12,
        )
    if last["role"] == "tool":
        text = f"The tool returned: {last_text or ''}"
    else:
        text = f"Echo: {last_text}" if last_text is not None else "Echo"
    return _Script(chunks=_words(text), prompt_tokens=prompt_tokens)


def _arguments(function: dict) -> dict:
    """Plausible arguments for a tool's JSON schema: "Paris" for strings, 1 for numbers."""
    params = function.get("parameters") or {}
    properties = params.get("properties") or {}
    samples = {"string": "Paris", "number": 1, "integer": 1, "boolean": True}
    return {
        name: samples.get(properties.get(name, {}).get("type"), "Paris")
        for name in params.get("required") or list(properties)
    }


def _usage(plan: _Script) -> dict:
    completion = plan.completion_tokens
    if completion is None:
        completion = len([c for c in plan.chunks if c]) + 12 * len(plan.tool_calls)
    prompt = plan.prompt_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish(plan: _Script) -> str:
    return plan.finish_reason or ("tool_calls" if plan.tool_calls else "stop")


def _completion(model: str, plan: _Script) -> dict:
    """A non-streaming chat or FIM completion: FIM answers are chat-shaped too."""
    message = {
        "role": "assistant",
        "content": "".join(plan.chunks),
        "tool_calls": plan.tool_calls or None,
        "prefix": False,
    }
    choice = {"index": 0, "message": message, "finish_reason": _finish(plan)}
    return {
        "id": uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(plan),
    }


def _stream(h: _Handler, model: str, plan: _Script, cut_after: int | None) -> None:
    """SSE: a role chunk, one chunk per content delta, the tool calls whole in one delta, then a last
    chunk with finish_reason and usage (Mistral sends usage unasked), then [DONE]."""
    head = {"id": uuid.uuid4().hex, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    h.start_sse()
    h.send_event(chunk({"role": "assistant", "content": ""}))
    for sent, text in enumerate(plan.chunks):
        if sent == cut_after:
            break
        if plan.delay:
            time.sleep(plan.delay)
        h.send_event(chunk({"content": text}))
    if cut_after is not None:
        h.drop_connection()
        return
    if plan.tool_calls:
        h.send_event(chunk({"tool_calls": [{**call, "index": i} for i, call in enumerate(plan.tool_calls)]}))
    h.send_event({**chunk({"content": ""}, _finish(plan)), "usage": _usage(plan)})
    h.send_event("[DONE]")
    h.end_sse()


def _embeddings(body: dict, script: _Script | None) -> dict:
    """Deterministic unit vectors (EMBEDDING_DIMS or output_dimension long) from each input's hash."""
    inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
    dims = body.get("output_dimension") or EMBEDDING_DIMS
    data = []
    for index, text in enumerate(inputs):
        digest = hashlib.sha256(text.encode()).digest() * (1 + dims // 32)
        vector = [b / 127.5 - 1 for b in digest[:dims]]
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        embedding = [round(v / norm, 6) for v in vector]
        data.append({"object": "embedding", "embedding": embedding, "index": index})
    prompt = (
        script.prompt_tokens
        if script and script.prompt_tokens is not None
        else sum(max(1, len(t.split())) for t in inputs)
    )
    return {
        "id": uuid.uuid4().hex,
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt, "completion_tokens": 0},
    }

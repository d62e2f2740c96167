"""A fake OpenAI-compatible API for tests: the real wire format on 127.0.0.1, scripted by each test.

It stands for what a config entry `model: openai/<model>` with `api_base: <fake.url>` reaches (OpenAI,
vLLM...), over real HTTP and with FakeMistral's scripting API. It is a fake of its own because OpenAI's
wire differs where a gateway can go wrong: stream usage only when `stream_options.include_usage` asks,
in an extra chunk with `choices: []`; tool calls streamed in fragments; base64 embeddings (the openai
SDK's default); errors in `{"error": {"message", "type", "param", "code"}}`. Unknown fields are ignored,
as vLLM does; api.openai.com refuses them (400 "Unrecognized request argument supplied: X"), so tests
that care assert on `requests`.

    with FakeOpenAI.running() as fake:
        fake.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)
        ...  # point the gateway at fake.url, then assert on fake.requests
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import string
import struct
import time
from typing import Any
from urllib.parse import unquote

# Provider-neutral: the request and behaviour records, the handler, helpers for OpenAI-style messages.
from .mistral import _arguments, _finish, _usage, _words
from .mistral import _text as _text_of
from .scripted import ScriptedFake, _Answer, _Handler, _Script

FIM_TEXT = "return a + b"  # a legacy completion with a `suffix` inserts this, as FakeMistral's FIM does
EMBEDDING_DIMS = 8
SYSTEM_FINGERPRINT = "fp_0fa4e0a1b2"

# path -> (method, endpoint name used by the scripting methods); /v1/models/{id} is "model".
ROUTES = {
    "/v1/chat/completions": ("POST", "chat"),
    "/v1/completions": ("POST", "completions"),
    "/v1/embeddings": ("POST", "embeddings"),
    "/v1/models": ("GET", "models"),
}
REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
MODELS = [
    {"id": model_id, "object": "model", "created": created, "owned_by": "system"}
    for model_id, created in (
        ("gpt-4o-mini", 1721172741),
        ("gpt-4o", 1715367049),
        ("gpt-3.5-turbo-instruct", 1692901427),
        ("text-embedding-3-small", 1705948997),
    )
]

# What `fail()` sends unless the test gives a body: (message, type, code) as api.openai.com answers.
ERROR_BODIES = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests per min (RPM). Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


class FakeOpenAI(ScriptedFake):
    """An OpenAI-compatible server; queue behaviours with reply/reply_stream/fail/hang/cut_stream/stream_error.

    Each queued behaviour answers the next request to its endpoint ("chat", "completions",
    "embeddings", "models", "model"). `fail` and `hang` act before validation, like an overloaded
    upstream; `reply` and `cut_stream` are consumed only by a valid request. With nothing queued,
    chat echoes the last user message (or calls a tool, see `_default`). A reply queued as a stream
    answers a non-streaming request as one JSON body, and the other way round.
    """

    API_KEY = "fake-openai-key"

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        return _tool_call(spec)

    def stream_error(self, after_chunks: int, message: str = ERROR_BODIES[500][0], *, endpoint: str = "chat") -> None:
        """As cut_stream, but then send OpenAI's mid-stream `data: {"error": {...}}` event and end the body
        cleanly (no [DONE]), as api.openai.com does when generation fails after the 200."""
        self._queue(endpoint, _Script(kind="cut", after_chunks=after_chunks, body=_error(message, kind="server_error")))

    # -- serving ------------------------------------------------------------------------------

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        """The JSON answer (status, payload, headers), or None once a stream or a hang went on the wire."""
        auth = h.headers.get("Authorization")
        if auth != f"Bearer {self.api_key}":
            return 401, _unauthorized(auth), None
        method, endpoint = ROUTES.get(path, ("GET", "model") if path.startswith("/v1/models/") else ("", ""))
        if h.command != method:  # OpenAI answers a wrong method like an unknown path
            return 404, _error(f"Invalid URL ({h.command} {path})"), None

        early = self._pop(endpoint, "fail", "hang")
        if early and early.kind == "fail":
            return early.status, _failure(early.status) if early.body is None else early.body, early.headers
        if early and self._server.stopping.wait(early.seconds):
            h.drop_connection()
            return None

        if endpoint == "models":
            return 200, {"object": "list", "data": MODELS}, None
        if endpoint == "model":
            model_id = unquote(path.removeprefix("/v1/models/"))
            card = next((c for c in MODELS if c["id"] == model_id), None)
            return (
                (200, card, None)
                if card
                else (404, _error(f"The model '{model_id}' does not exist", "model", "model_not_found"), None)
            )

        if problem := _invalid(endpoint, body, bad_json):
            return 400, problem, None
        script = None if early else self._pop(endpoint, "reply", "cut")
        cut, error = (script.after_chunks, script.body) if script and script.kind == "cut" else (None, None)
        plan = script if script and script.kind == "reply" else _default(endpoint, body)
        if body.get("stream") and endpoint != "embeddings":
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            head, lead, pieces, finals = _events(endpoint, body, plan)
            stop = None if cut is None else len(lead) + min(cut, len(pieces))
            _stream(h, head, lead + pieces + finals, _usage(plan) if include_usage else None, stop, plan.delay, error)
            return None
        build = {"chat": _chat_completion, "completions": _text_completion, "embeddings": _embeddings}[endpoint]
        payload = build(body, plan)
        if cut is None:
            return 200, payload, None
        h.send_truncated_json(200, payload)
        return None


def _error(
    message: str, param: str | None = None, code: str | None = None, kind: str = "invalid_request_error"
) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _failure(status: int) -> dict:
    message, kind, code = ERROR_BODIES.get(
        status, ("Error.", "server_error" if status >= 500 else "invalid_request_error", None)
    )
    return _error(message, None, code, kind)


def _unauthorized(auth: str | None) -> dict:
    """OpenAI's 401, which shows the start and end of a wrong key so that users can tell keys apart."""
    key = (auth or "").removeprefix("Bearer ").strip()
    if not key:
        return _error(
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    shown = f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}" if len(key) > 7 else key
    return _error(
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _invalid(endpoint: str, body: Any, bad_json: ValueError | None) -> dict | None:
    """OpenAI's 400 for the mistakes a gateway could make (body, required fields, roles, streaming
    options); everything else is accepted unchecked, see the module docstring."""
    if bad_json is not None or not isinstance(body, dict):
        return _error("We could not parse the JSON body of your request.")
    if not body.get("model") or not isinstance(body["model"], str):
        return _error("you must provide a model parameter")
    name = REQUIRED[endpoint]
    value = body.get(name)
    if value is None:
        return _error(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    empty = value == [] or (value == "" and endpoint == "embeddings")
    if empty or not isinstance(value, list if endpoint == "chat" else str | list):
        return _error(
            f"Invalid '{name}': expected a non-empty {'array' if endpoint == 'chat' else 'string or array'}.",
            name,
            "empty_array" if empty else "invalid_type",
        )
    if body.get("stream_options") is not None and not body.get("stream"):
        return _error("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    if endpoint == "embeddings" and (body.get("encoding_format") or "float") not in ("float", "base64"):
        return _error(
            f"Invalid value: '{body['encoding_format']}'. Supported values are: 'float' and 'base64'.",
            "encoding_format",
            "invalid_value",
        )
    for i, message in enumerate(value if endpoint == "chat" else []):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            return _error(
                f"Invalid value: '{role}'. Supported values are: {', '.join(ROLES)}.",
                f"messages[{i}].role",
                "invalid_value",
            )
        if role == "tool" and not message.get("tool_call_id"):
            return _error(
                f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                f"messages[{i}].tool_call_id",
                "missing_required_parameter",
            )
    return None


def _alnum(n: int) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=n))


def _tool_call(spec: dict) -> dict:
    function = spec.get("function", spec)
    arguments = function.get("arguments", {})
    return {
        "id": spec.get("id") or f"call_{_alnum(24)}",
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
        },
    }


def _items(value: Any) -> list[str]:
    """The inputs of a completion or an embedding: a string, strings, token ids or lists of token ids."""
    if isinstance(value, str) or (value and all(isinstance(t, int) for t in value)):
        value = [value]
    return [v if isinstance(v, str) else " ".join(map(str, v)) for v in value]


def _texts(body: dict, plan: _Script) -> list[list[str]]:
    """A legacy completion's chunks, one list per prompt: the plan's, or by default an echo of the prompt
    (FIM_TEXT when a `suffix` asks for an insertion)."""
    return [plan.chunks or _words(FIM_TEXT if body.get("suffix") else f"Echo: {p}") for p in _items(body["prompt"])]


def _default(endpoint: str, body: dict) -> _Script:
    """What an OpenAI model would plausibly say, deterministically: for chat, a call to the first tool (or
    the one `tool_choice` names) when tool_choice is "required" or a function, or when the last message
    is a user's asking about the weather; after a tool message, a summary of its result; otherwise "Echo:
    <last user text>". See `_texts` for legacy completions. Tokens are words (+2 per chat message)."""
    if endpoint == "embeddings":
        return _Script(prompt_tokens=sum(max(1, len(t.split())) for t in _items(body["input"])))
    if endpoint == "completions":
        pieces = sum(len(chunks) for chunks in _texts(body, _Script()))
        return _Script(prompt_tokens=sum(len(p.split()) for p in _items(body["prompt"])) or 1, completion_tokens=pieces)
    messages = body["messages"]
    prompt_tokens = sum(len((_text_of(m.get("content")) or "x").split()) for m in messages) + 2 * len(messages)
    last, choice = messages[-1], body.get("tool_choice") or "auto"
    functions = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
    named = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    wants_tool = (
        named
        or choice == "required"
        or (choice == "auto" and last["role"] == "user" and "weather" in (_text_of(last.get("content")) or "").lower())
    )
    if functions and wants_tool:
        function = next((f for f in functions if f["name"] == named), functions[0])
        return _Script(
            tool_calls=[_tool_call({"name": function["name"], "arguments": _arguments(function)})],
            finish_reason="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=12,
        )
    if last["role"] == "tool":
        text = f"The tool returned: {_text_of(last.get('content')) or ''}"
    else:
        user_text = next((_text_of(m.get("content")) for m in reversed(messages) if m["role"] == "user"), None)
        text = f"Echo: {user_text}" if user_text is not None else "Echo"
    return _Script(chunks=_words(text), prompt_tokens=prompt_tokens)


def _head(body: dict, kind: str) -> dict:
    prefix = "chatcmpl-" if kind.startswith("chat") else "cmpl-"
    return {
        "id": prefix + _alnum(29),
        "object": kind,
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _chat_completion(body: dict, plan: _Script) -> dict:
    message = {
        "role": "assistant",
        "content": "".join(plan.chunks) or (None if plan.tool_calls else ""),
        **({"tool_calls": plan.tool_calls} if plan.tool_calls else {}),
        "refusal": None,
    }
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(plan)}
    return {**_head(body, "chat.completion"), "choices": [choice], "usage": _usage(plan)}


def _text_completion(body: dict, plan: _Script) -> dict:
    choices = [
        {"text": "".join(chunks), "index": i, "logprobs": None, "finish_reason": _finish(plan)}
        for i, chunks in enumerate(_texts(body, plan))
    ]
    return {**_head(body, "text_completion"), "choices": choices, "usage": _usage(plan)}


def _events(endpoint: str, body: dict, plan: _Script) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """(chunk head, lead choices, pieces that cut_stream counts, final choices) of a stream. A chat tool
    call comes first as id, type and name with empty arguments, then as argument fragments by index."""
    if endpoint == "completions":

        def text(i: int, piece: str, finish: str | None = None) -> dict:
            return {"text": piece, "index": i, "logprobs": None, "finish_reason": finish}

        texts = _texts(body, plan)
        return (
            _head(body, "text_completion"),
            [],
            [text(i, c) for i, chunks in enumerate(texts) for c in chunks],
            [text(i, "", _finish(plan)) for i in range(len(texts))],
        )

    def choice(delta: dict, finish: str | None = None) -> dict:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    pieces = [{"content": c} for c in plan.chunks]
    for index, call in enumerate(plan.tool_calls):
        function = call["function"]
        pieces.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": function["name"], "arguments": ""},
                    }
                ]
            }
        )
        pieces += [
            {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
            for part in re.findall(r"\w+|\W+", function["arguments"])
        ]
    return (
        _head(body, "chat.completion.chunk"),
        [choice({"role": "assistant", "content": ""})],
        [choice(p) for p in pieces],
        [choice({}, _finish(plan))],
    )


def _stream(
    h: _Handler,
    head: dict,
    choices: list[dict],
    usage: dict | None,
    stop: int | None,
    delay: float,
    error: dict | None = None,
) -> None:
    """SSE, one choice per chunk, `delay` s apart, until `stop` (see cut_stream and stream_error); then the
    usage chunk when asked for (earlier chunks then carry `"usage": null`, as OpenAI's), and [DONE]."""
    h.start_sse()
    for sent, choice in enumerate(choices):
        if sent == stop:
            if not error:
                return h.drop_connection()
            h.send_event(error)  # stream_error: OpenAI's error event, then a clean end of the body
            return h.end_sse()
        if delay and sent:
            time.sleep(delay)
        h.send_event({**head, "choices": [choice], **({"usage": None} if usage else {})})
    if usage:
        h.send_event({**head, "choices": [], "usage": usage})
    h.send_event("[DONE]")
    h.end_sse()


def _embeddings(body: dict, plan: _Script) -> dict:
    """Deterministic unit vectors (EMBEDDING_DIMS or `dimensions` long) from each input's hash, as
    floats or as base64 of little-endian float32, which the openai SDK requests by default."""
    dims = body.get("dimensions") or EMBEDDING_DIMS
    data = []
    for index, text in enumerate(_items(body["input"])):
        digest = hashlib.sha256(text.encode()).digest() * (1 + dims // 32)
        vector = [b / 127.5 - 1 for b in digest[:dims]]
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        embedding: Any = [round(v / norm, 6) for v in vector]
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dims}f", *embedding)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    prompt = plan.prompt_tokens or 0
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }

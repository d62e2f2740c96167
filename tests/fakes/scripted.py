"""What the fake providers share: the record of each request, the queue of scripted behaviours, and
the scripting API tests use (reply, reply_stream, fail, hang, cut_stream, reset).

Each fake (tests/fakes/mistral.py, tests/fakes/openai.py) subclasses ScriptedFake with its
API_KEY, its tool-call id style (`make_tool_call`) and its own `_serve`, which speaks the provider's
wire format and consumes the queue.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .wire import LoopbackServer, WireHandler


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    json: Any  # parsed body, or None when empty or not JSON
    body: bytes


@dataclass
class _Script:
    """A queued behaviour (kind: reply, fail, hang, cut), also used for the computed default reply."""

    kind: str = "reply"
    chunks: list[str] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    delay: float = 0.0
    status: int = 0
    body: Any = None
    headers: dict[str, str] | None = None
    seconds: float = 0.0
    after_chunks: int = 0


_Answer = tuple[int, Any, dict[str, str] | None]


class _Handler(WireHandler):
    def do_GET(self) -> None:
        self.server.owner._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET


class ScriptedFake:
    """A provider on 127.0.0.1 whose answers each test scripts; subclasses speak the wire format."""

    API_KEY = ""

    @staticmethod
    def make_tool_call(spec: dict) -> dict:
        raise NotImplementedError

    def _serve(self, h: _Handler) -> None:
        """Record the request, then answer it as the provider would (`_answer`)."""
        raw = h.read_body()
        body, bad_json = None, None
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            bad_json = exc
        path = urlsplit(h.path).path
        headers = {k.lower(): v for k, v in h.headers.items()}
        self.requests.append(Recorded(h.command, path, headers, body, raw))
        answer = self._answer(h, path, body, bad_json)
        if answer is not None:
            h.send_json(*answer)

    def _answer(self, h: _Handler, path: str, body: Any, bad_json: ValueError | None) -> _Answer | None:
        """The JSON answer (status, payload, headers), or None once a stream or a hang went on the wire."""
        raise NotImplementedError

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key or self.API_KEY
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque[_Script]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = LoopbackServer(_Handler, self)
        self.root = self._server.root
        self.url = f"{self.root}/v1"

    @classmethod
    @contextlib.contextmanager
    def running(cls, api_key: str | None = None) -> Iterator[Any]:
        fake = cls(api_key)
        fake._server.start()
        try:
            yield fake
        finally:
            fake._server.stop()

    # -- scripting ----------------------------------------------------------------------------

    def reply(
        self,
        text: str | None = None,
        *,
        tool_calls: list[dict] | None = None,
        finish_reason: str | None = None,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        endpoint: str = "chat",
    ) -> None:
        """Answer `text` ("Hello!", or no content beside tool calls). A tool call is `{"name", "arguments"}`
        (arguments a dict or a JSON string) or a full `{"id", "type", "function"}`."""
        calls = [self.make_tool_call(c) for c in tool_calls or []]
        text = ("" if calls else "Hello!") if text is None else text
        self._queue(
            endpoint,
            _Script(
                chunks=[text],
                tool_calls=calls,
                finish_reason=finish_reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            ),
        )

    def reply_stream(
        self,
        chunks: list[str],
        *,
        tool_calls: list[dict] | None = None,
        prompt_tokens: int = 10,
        completion_tokens: int | None = None,
        endpoint: str = "chat",
        delay: float = 0.0,
    ) -> None:
        """Stream one content delta per chunk, `delay` s apart; completion_tokens defaults to len(chunks)."""
        calls = [self.make_tool_call(c) for c in tool_calls or []]
        self._queue(
            endpoint,
            _Script(
                chunks=list(chunks),
                tool_calls=calls,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                delay=delay,
            ),
        )

    def fail(
        self, status: int, body: dict | None = None, *, endpoint: str = "chat", headers: dict[str, str] | None = None
    ) -> None:
        """Answer `status` with `body`, by default the provider's error for that status; pass
        `headers={"retry-after": "1"}` to test a client's back-off."""
        self._queue(endpoint, _Script(kind="fail", status=status, body=body, headers=headers))

    def hang(self, seconds: float, *, endpoint: str = "chat") -> None:
        """Read the request, send nothing for `seconds`, then give the default answer to whoever still
        listens (the queue is left alone: the client's retry may be waiting for the next behaviour)."""
        self._queue(endpoint, _Script(kind="hang", seconds=seconds))

    def cut_stream(self, after_chunks: int, *, endpoint: str = "chat") -> None:
        """Stream the role chunk and `after_chunks` content chunks of the default reply, then drop the
        socket: no final chunk, no [DONE], no terminating zero-length HTTP chunk. A non-streaming
        request gets half of its JSON body instead."""
        self._queue(endpoint, _Script(kind="cut", after_chunks=after_chunks))

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    @property
    def last_request(self) -> Recorded:
        return self.requests[-1]

    def _queue(self, endpoint: str, script: _Script) -> None:
        with self._lock:
            self._scripts[endpoint].append(script)

    def _pop(self, endpoint: str, *kinds: str) -> _Script | None:
        with self._lock:
            queue = self._scripts[endpoint]
            return queue.popleft() if queue and queue[0].kind in kinds else None

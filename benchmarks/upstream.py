"""A fake Mistral-compatible upstream, fast enough not to be the bottleneck.

Why a hand-written server: a framework-based fake (Django, Flask, even aiohttp)
costs as much CPU per request as the proxies we want to measure, so on a 2-core
machine it would cap every result. This is one asyncio process speaking raw
HTTP/1.1 with keep-alive and pipelining (``asyncio.Protocol``, uvloop if it is
installed): tens of thousands of requests per second on one core.

Endpoints:

* ``POST /v1/chat/completions`` -- a canned ``chat.completion`` JSON; with
  ``"stream": true`` an SSE stream (chunked transfer encoding) of N
  ``chat.completion.chunk`` events separated by a fixed gap, ``usage`` on the
  last one, then ``data: [DONE]``. The first chunk is sent at once, so a
  client's time-to-first-chunk is pure transport + proxy overhead.
* ``GET /v1/models`` -- one model card.
* ``POST /_bench/config`` -- ``{"chunks": N, "gap_ms": G}`` changes the stream
  shape for the following requests. The runner calls it directly, never
  through a proxy, so the same proxy config serves fast and slow streams.

Run: ``python benchmarks/upstream.py --port 9000 [--chunks 20 --gap-ms 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

STATE = {"chunks": 20, "gap_ms": 20.0}
MAX_HEADER = 64 * 1024


def _chat_body(model: str) -> bytes:
    return json.dumps(
        {
            "id": "cmpl-bench0000000000000000000000",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Hello from the bench upstream.",
                        "tool_calls": None,
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        },
        separators=(",", ":"),
    ).encode()


def _chunk_event(model: str, i: int, n: int, created: int) -> bytes:
    last = i == n - 1
    chunk: dict = {
        "id": "cmpl-bench-stream00000000000000",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                # Content in the first chunk too, so no proxy can drop it as empty
                # and shift the time-to-first-chunk onto the second one.
                "delta": ({"role": "assistant", "content": "tok0"} if i == 0 else {"content": f" tok{i}"}),
                "finish_reason": "stop" if last else None,
            }
        ],
    }
    if last:
        chunk["usage"] = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}
    data = b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
    return _http_chunk(data)


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


MODELS_BODY = json.dumps(
    {
        "object": "list",
        "data": [
            {
                "id": "mistral-small-latest",
                "object": "model",
                "created": 1700000000,
                "owned_by": "mistralai",
                "type": "base",
                "capabilities": {"completion_chat": True, "function_calling": True},
            }
        ],
    }
).encode()


def _response(status: str, body: bytes, ctype: bytes = b"application/json", close: bool = False) -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 ",
            status.encode(),
            b"\r\nContent-Type: ",
            ctype,
            b"\r\nContent-Length: ",
            str(len(body)).encode(),
            b"\r\nConnection: close\r\n\r\n" if close else b"\r\n\r\n",
            body,
        ]
    )


class UpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests from the buffer, answer them in order."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.streaming: asyncio.Task | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.streaming is not None:
            self.streaming.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.streaming is None:
            self._process()

    def _process(self) -> None:
        """Answer every complete request in the buffer; stop at a stream (it resumes us)."""
        while not self.closed:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self.buf) > MAX_HEADER:
                    self._fail(b"431 Request Header Fields Too Large")
                return
            head = self.buf[:head_end].decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, path, _version = lines[0].split(" ", 2)
            except ValueError:
                self._fail(b"400 Bad Request")
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            start = head_end + 4
            if "chunked" in headers.get("transfer-encoding", "").lower():
                parsed = _dechunk(self.buf, start)
                if parsed is None:
                    return
                body, end = parsed
            else:
                length = int(headers.get("content-length", "0") or 0)
                if len(self.buf) - start < length:
                    return
                body, end = self.buf[start : start + length], start + length
            self.buf = self.buf[end:]
            close = headers.get("connection", "").lower() == "close"
            if self._handle(method, path.split("?", 1)[0], body, close):
                return

    def _fail(self, status: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_response(status.decode(), b"{}", close=True))
        self.transport.close()
        self.closed = True

    def _handle(self, method: str, path: str, body: bytes, close: bool) -> bool:
        """Write the answer. Returns True when processing must pause (stream or close)."""
        assert self.transport is not None
        if method == "POST" and path.endswith("/chat/completions"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                self.transport.write(_response("400 Bad Request", b'{"error":"bad json"}'))
                return False
            model = str(req.get("model") or "mistral-small-latest")
            if req.get("stream"):
                self.streaming = asyncio.get_running_loop().create_task(self._stream(model, close))
                return True
            self.transport.write(_response("200 OK", _chat_body(model), close=close))
        elif method == "GET" and path.endswith("/models"):
            self.transport.write(_response("200 OK", MODELS_BODY, close=close))
        elif method == "POST" and path == "/_bench/config":
            cfg = json.loads(body or b"{}")
            STATE["chunks"] = max(1, int(cfg.get("chunks", STATE["chunks"])))
            STATE["gap_ms"] = max(0.0, float(cfg.get("gap_ms", STATE["gap_ms"])))
            self.transport.write(_response("200 OK", json.dumps(STATE).encode(), close=close))
        elif method == "GET" and path in ("/", "/health"):
            self.transport.write(_response("200 OK", b'{"ok":true}', close=close))
        else:
            self.transport.write(_response("404 Not Found", b'{"error":"not found"}', close=close))
        if close:
            self.transport.close()
            self.closed = True
            return True
        return False

    async def _stream(self, model: str, close: bool) -> None:
        assert self.transport is not None
        n, gap = int(STATE["chunks"]), STATE["gap_ms"] / 1000.0
        created = int(time.time())
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n" + (b"Connection: close\r\n\r\n" if close else b"\r\n")
        )
        try:
            for i in range(n):
                if i:
                    await asyncio.sleep(gap)
                if self.closed:
                    return
                self.transport.write(_chunk_event(model, i, n, created))
            self.transport.write(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        except asyncio.CancelledError:
            return
        self.streaming = None
        if close:
            self.transport.close()
            self.closed = True
        elif self.buf:
            self._process()


def _dechunk(buf: bytes, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked request body starting at ``pos``; None if incomplete."""
    out = []
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(buf[pos:line_end].split(b";", 1)[0] or b"0", 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return b"".join(out), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        out.append(buf[pos : pos + size])
        pos += size + 2


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    args = ap.parse_args()
    STATE["chunks"], STATE["gap_ms"] = args.chunks, args.gap_ms
    try:
        import uvloop  # optional: faster loop, same behaviour

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

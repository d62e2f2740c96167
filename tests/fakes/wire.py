"""HTTP/1.1 plumbing shared by the fake provider servers in this package.

A hand-written `BaseHTTPRequestHandler` controls every byte on the wire, so a fake can do what a
failing upstream does: keep a connection alive, stream Server-Sent Events chunk by chunk, stop a
stream halfway without the terminating zero chunk, or send nothing at all. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """A thread-per-connection server on 127.0.0.1 and a free port.

    It remembers open connections so that `stop()` can cut idle keep-alive ones too: otherwise a
    pooled client could still be served by a stopped fake's leftover handler thread.
    """

    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 refuses connections under concurrent load

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], owner: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler_class)
        self.owner = owner
        self.stopping = threading.Event()  # handlers wait on it, so stop() is never blocked by a hang
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._lock:
            still_open = list(self._open)
        for conn in still_open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away (timeouts, cut streams): that is what tests provoke."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class WireHandler(BaseHTTPRequestHandler):
    """JSON with Content-Length, SSE over chunked transfer encoding, and abrupt disconnects."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real providers and connection pools expect
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms ACK stalls
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})})
        self.wfile.write(body)

    def send_truncated_json(self, status: int, payload: Any) -> None:
        """Announce the whole body's length, send half of it, then drop the connection."""
        body = json.dumps(payload).encode()
        self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        self.wfile.write(body[: len(body) // 2])
        self.drop_connection()

    def start_sse(self) -> None:
        self._head(
            200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Transfer-Encoding": "chunked"}
        )

    def send_event(self, data: Any) -> None:
        """One `data: ...` event in its own HTTP chunk, flushed so the client sees it at once."""
        text = data if isinstance(data, str) else json.dumps(data)
        payload = f"data: {text}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self) -> None:
        """Close the socket mid-response, as a crashed upstream or a cut network would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

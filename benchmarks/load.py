"""Load generators: wrk for request/response throughput, a raw-socket client for streams.

Why wrk: it is a C event loop that costs far less CPU per request than any
Python client, so on a 2-core machine it leaves the cores to the server under
test. A Lua script sets the POST body and prints wrk's latency percentiles as
one JSON line from its ``done()`` hook.

Why a hand-written stream client: HTTP client libraries buffer (line readers,
decoders, pools), which would hide exactly what we measure -- when each SSE
event reaches the client. This one reads the socket with asyncio, undoes the
chunked transfer encoding itself, and timestamps every ``data:`` event as the
read that completed it returns.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CHAT_PATH = "/v1/chat/completions"


def chat_body(stream: bool = False) -> dict:
    body: dict = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    if stream:
        body["stream"] = True
    return body


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None on no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# --------------------------------------------------------------------------- wrk

WRK_LUA = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,"max_us":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def wrk_available() -> str | None:
    return shutil.which("wrk")


def write_wrk_script(directory: Path, master_key: str, name: str = "post.lua") -> Path:
    path = directory / name
    body = json.dumps(chat_body(), separators=(",", ":"))
    path.write_text(WRK_LUA.format(body=body, key=master_key))
    return path


def run_wrk(url: str, script: Path, connections: int, duration: float, timeout_s: int = 10) -> dict:
    """One fixed-duration closed-loop run; returns requests, rps, latency percentiles (ms), errors."""
    threads = max(1, min(2, connections))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s"]
    cmd += ["--timeout", f"{timeout_s}s", "-s", str(script), url + CHAT_PATH]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    match = re.search(r"^WRKJSON (\{.*\})$", proc.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no result (rc={proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    ok = raw["requests"] - raw["status"]
    return {
        "connections": connections,
        "threads": threads,
        "seconds": round(seconds, 3),
        "requests": raw["requests"],
        "ok_requests": ok,
        "rps": round(ok / seconds, 1) if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
    }


# ----------------------------------------------------------------------- streams


@dataclass
class StreamResult:
    ok: bool = False
    error: str = ""
    status: int = 0
    ttfc: float | None = None  # seconds from connect() to the first data event
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0


class _Dechunker:
    """Incremental decoder for ``Transfer-Encoding: chunked``."""

    def __init__(self) -> None:
        self.buf = b""
        self.need = -1  # bytes left in the current chunk, -1 = expecting a size line
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = []
        while not self.done:
            if self.need < 0:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    break
                self.need = int(self.buf[:end].split(b";", 1)[0] or b"0", 16)
                self.buf = self.buf[end + 2 :]
                if self.need == 0:
                    self.done = True
                    break
            if len(self.buf) < self.need + 2:
                break
            out.append(self.buf[: self.need])
            self.buf = self.buf[self.need + 2 :]
            self.need = -1
        return b"".join(out)


async def one_stream(port: int, master_key: str, timeout: float, counter: dict | None = None) -> StreamResult:
    """Open a fresh connection, POST a streamed chat request, time every SSE data event."""
    res = StreamResult()
    body = json.dumps(chat_body(stream=True)).encode()
    request = (
        f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {master_key}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    deadline = time.monotonic() + timeout
    writer = None
    opened = False
    try:
        t0 = time.perf_counter()
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.1, deadline - time.monotonic()))
        lines = head.decode("latin-1").split("\r\n")
        res.status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if res.status != 200:
            rest = await asyncio.wait_for(reader.read(300), 2)
            res.error = f"HTTP {res.status}: {rest[:200]!r}"
            return res
        if counter is not None:
            counter["open"] += 1
            counter["max_open"] = max(counter["max_open"], counter["open"])
            opened = True
        dechunk = _Dechunker() if "chunked" in headers.get("transfer-encoding", "").lower() else None
        sse = b""
        last = None
        done = False
        while not done:
            data = await asyncio.wait_for(reader.read(65536), max(0.1, deadline - time.monotonic()))
            now = time.perf_counter()
            if not data:
                break
            sse += dechunk.feed(data) if dechunk else data
            sse = sse.replace(b"\r\n", b"\n")
            *events, sse = sse.split(b"\n\n")
            for event in events:
                payload = b"".join(ln[5:].lstrip() for ln in event.split(b"\n") if ln.startswith(b"data:"))
                if not payload:
                    continue
                if payload == b"[DONE]":
                    done = True
                    break
                res.chunks += 1
                if last is None:
                    res.ttfc = now - t0
                else:
                    res.gaps.append(now - last)
                last = now
            if dechunk and dechunk.done:
                break
        res.ok = done and res.chunks > 0
        if not res.ok:
            res.error = f"stream ended without [DONE] after {res.chunks} chunks"
    except TimeoutError:
        res.error = f"timeout after {res.chunks} chunks"
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        if counter is not None and opened:
            counter["open"] -= 1
        if writer is not None:
            writer.close()
    return res


async def _stream_pool(port, key, concurrency, total, timeout, ramp_s, pause_s, counter) -> list[StreamResult]:
    results: list[StreamResult] = []
    remaining = [total]

    async def worker(i: int) -> None:
        if ramp_s:
            await asyncio.sleep(ramp_s * i / concurrency)
        while remaining[0] > 0:
            remaining[0] -= 1
            results.append(await one_stream(port, key, timeout, counter))
            if pause_s and remaining[0] > 0:
                await asyncio.sleep(pause_s)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return results


def run_streams(
    port: int,
    master_key: str,
    concurrency: int,
    total: int,
    timeout: float,
    ramp_s: float = 0.0,
    pause_s: float = 0.0,
    sampler=None,
    sample_every: float = 0.25,
) -> dict:
    """``total`` streams through ``concurrency`` parallel clients, each pausing ``pause_s`` between
    its streams; clients start spread over ``ramp_s``; optional ``sampler()`` polled meanwhile."""
    counter = {"open": 0, "max_open": 0}
    samples: list = []

    async def main() -> list[StreamResult]:
        task = asyncio.ensure_future(
            _stream_pool(port, master_key, concurrency, total, timeout, ramp_s, pause_s, counter)
        )
        while not task.done():
            if sampler is not None:
                samples.append(sampler())
            await asyncio.wait([task], timeout=sample_every)
        return task.result()

    t0 = time.monotonic()
    results = asyncio.run(main())
    ttfc = [r.ttfc * 1000 for r in results if r.ok and r.ttfc is not None]
    gaps = [g * 1000 for r in results if r.ok for g in r.gaps]
    errors = [r.error for r in results if not r.ok]
    return {
        "concurrency": concurrency,
        "streams": len(results),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(time.monotonic() - t0, 2),
        "chunks_per_stream": sorted({r.chunks for r in results if r.ok}),
        "ttfc_p50_ms": percentile(ttfc, 50),
        "ttfc_p99_ms": percentile(ttfc, 99),
        "gap_p50_ms": percentile(gaps, 50),
        "gap_p99_ms": percentile(gaps, 99),
        "gap_max_ms": max(gaps) if gaps else None,
        "max_open": counter["max_open"],
        "samples": samples,
    }

"""What the ledger reliability tests need beside a Tollgate: a slow upstream, the gunicorn
workers' pids, a private Redis to kill, callers that know whether they got a whole answer, and
the usage rows as the database holds them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import urllib3

from tests.e2e.server import free_port
from tests.fakes.mistral import FakeMistral
from tests.fakes.scripted import _Script

PROMPT_TOKENS = 10
COMPLETION_TOKENS = 5
CHUNKS = [f"w{i} " for i in range(COMPLETION_TOKENS)]
REDIS_SERVER = "/usr/bin/redis-server"

HTTP = urllib3.PoolManager(maxsize=128, block=False, retries=False, timeout=urllib3.Timeout(connect=5, read=20))


class SlowMistral(FakeMistral):
    """A Mistral upstream whose every chat answer takes `seconds`: JSON after a pause, a stream
    spread over its chunks. It always reports PROMPT_TOKENS + COMPLETION_TOKENS of usage."""

    seconds = 1.0

    def _answer(self, h: Any, path: str, body: Any, bad_json: ValueError | None) -> Any:
        if isinstance(body, dict) and not body.get("stream"):
            time.sleep(self.seconds)
        return super()._answer(h, path, body, bad_json)

    def _pop(self, endpoint: str, *kinds: str) -> _Script | None:
        if endpoint == "chat" and "reply" in kinds:
            return _Script(
                chunks=CHUNKS,
                prompt_tokens=PROMPT_TOKENS,
                completion_tokens=COMPLETION_TOKENS,
                delay=self.seconds / len(CHUNKS),
            )
        return super()._pop(endpoint, *kinds)


def config(upstream: FakeMistral, *, master_key: str, input_price: Decimal, output_price: Decimal) -> str:
    """A config with one alias, `slow`, served by `upstream` at the given per-token prices."""
    return f"""\
model_list:
  - model_name: slow
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: {upstream.API_KEY}
      api_base: {upstream.url}
      input_cost_per_token: {input_price}
      output_cost_per_token: {output_price}

general_settings:
  master_key: {master_key}
"""


# --- callers --------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What one caller got: a status (None: no response at all) and whether the answer was whole."""

    request_id: str
    stream: bool
    status: int | None
    complete: bool  # a JSON 200 body, or a stream that reached `data: [DONE]`
    cost: Decimal | None = None  # x-tollgate-cost (JSON answers only)
    error: str = ""
    started: float = 0.0  # time.monotonic()
    ended: float = 0.0


def ask(url: str, key: str, request_id: str, *, stream: bool, deadline: float) -> Answer:
    """One chat call with our own x-request-id, read to the end or to the break."""
    started = time.monotonic()
    answer = Answer(request_id, stream, None, False, started=started)
    if started > deadline:
        answer.error = "not sent: past the deadline"
        return answer
    body = {
        "model": "slow",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": stream,
        "max_tokens": COMPLETION_TOKENS,
    }
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "x-request-id": request_id}
    received = b""
    try:
        response = HTTP.request(
            "POST", f"{url}/v1/chat/completions", body=json.dumps(body), headers=headers, preload_content=False
        )
        answer.status = response.status
        if "x-tollgate-cost" in response.headers:
            answer.cost = Decimal(response.headers["x-tollgate-cost"])
        assert response.headers.get("x-request-id") == request_id, response.headers
        for part in response.stream(4096):
            received += part
        response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as e:
        answer.error = type(e).__name__
    answer.ended = time.monotonic()
    if answer.status == 200:
        answer.complete = b"data: [DONE]\n\n" in received if stream else "choices" in _json(received)
    elif answer.status is not None:
        answer.error = str(_json(received).get("error", {}).get("code"))
    return answer


def _json(body: bytes) -> dict:
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


# --- gunicorn workers -----------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (gunicorn's master: its workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis.
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def open_files(pid: int) -> int:
    """How many file descriptors `pid` holds: for a worker, mostly its callers' and upstream sockets."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# --- a private Redis ------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own on a free port, to kill and start again at will."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.tmp / f"redis-{self.port}.log").open("ab") as log:
            self.process = subprocess.Popen(argv, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2, socket_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, f"redis-server exited with {self.process.returncode}"
            try:
                client.ping()
                return
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not answer within 10s"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=5)

    def keys(self, pattern: str) -> list[bytes]:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=1).keys(pattern)

    @classmethod
    @contextlib.contextmanager
    def running(cls, tmp: Path) -> Iterator[PrivateRedis]:
        server = cls(tmp)
        server.start()
        try:
            yield server
        finally:
            server.kill()


# --- the ledger, read straight from the server's database ------------------------------------------

COLUMNS = "request_id, status, stream, prompt_tokens, completion_tokens, cost, key_hash"


@dataclass(frozen=True)
class Row:
    request_id: str
    status: int
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    key_hash: str


@contextlib.contextmanager
def _connected(database_url: str) -> Iterator[Any]:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10)
        try:
            yield conn
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def usage_rows(database_url: str, *, prefix: str) -> list[Row]:
    """Every usage row whose request id starts with `prefix`."""
    with _connected(database_url) as conn:
        # CAST: SQLite keeps decimals as REAL; its text form reads back exactly as a Decimal.
        found = conn.execute(
            f"SELECT {COLUMNS.replace('cost', 'CAST(cost AS TEXT)')} FROM billing_usagerecord "
            f"WHERE request_id LIKE '{prefix}%'"
        ).fetchall()
    return [Row(r[0], int(r[1]), bool(r[2]), int(r[3]), int(r[4]), Decimal(str(r[5])), r[6]) for r in found]


def pending_rollup(database_url: str) -> int:
    with _connected(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM billing_usagerecord WHERE NOT rolled_up").fetchone()[0])

"""Start a real Tollgate (manage.py runproxy → gunicorn, gevent workers) for end-to-end tests.

Each server gets its own database: a fresh PostgreSQL database beside the test one when
DATABASE_URL points at PostgreSQL (as in CI), else a SQLite file in a temporary directory.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Tollgate:
    url: str  # http://127.0.0.1:PORT
    key: str  # the master key
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def database(tmp: Path) -> Iterator[str]:
    """Yield a DATABASE_URL for one server, and drop it afterwards."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp / 'tollgate-e2e.db'}"
        return
    import psycopg

    name = f"tollgate_e2e_{uuid.uuid4().hex[:8]}"
    server_url, _, _ = base.rpartition("/")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server_url}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running(
    config: Path,
    *,
    key: str,
    tmp: Path,
    workers: int = 2,
    env: dict[str, str] | None = None,
    database_url: str | None = None,
    unset: Iterable[str] = (),
) -> Iterator[Tollgate]:
    """Run `manage.py runproxy --config config` until the block ends; fail loudly if it won't start.

    With `database_url` (from `database()`), the server uses that database instead of a fresh one
    of its own: two servers on one database act as two instances of one deployment. The server
    inherits this process's environment, less the variables named in `unset` (a provider's ambient
    settings, which must not reach a fake), plus `env`.
    """
    port = free_port()
    log = tmp / f"tollgate-{port}.log"
    with _given(database_url) if database_url else database(tmp) as database_url:
        environment = {
            **{name: value for name, value in os.environ.items() if name not in set(unset)},
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DJANGO_SECRET_KEY": "e2e-secret-key-not-for-production",
            "TOLLGATE_MASTER_KEY": "",
            "TOLLGATE_DEPLOYMENT_CACHE_SECONDS": "0.2",
            # No Celery worker here: each gunicorn worker runs the periodic jobs, the usage rollup
            # five times a second, so spend totals settle within a fraction of a second.
            "TOLLGATE_EMBEDDED_BEAT": "1",
            "TOLLGATE_ROLLUP_SECONDS": "0.2",
            "TOLLGATE_NUM_RETRIES": "0",  # a failure the test provokes is final unless its config retries
            **(env or {}),
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "runproxy",
                    "--config",
                    str(config),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Tollgate(url=f"http://127.0.0.1:{port}", key=key, log=log, process=process)
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(process)


@contextlib.contextmanager
def _given(database_url: str) -> Iterator[str]:
    yield database_url  # owned by the caller: neither created nor dropped here


def _wait_ready(server: Tollgate, timeout: float = 60.0) -> None:
    http = urllib3.PoolManager(retries=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Tollgate exited with {server.process.returncode}:\n{server.log_text()}")
        try:
            if http.request("GET", f"{server.url}/health/liveliness", timeout=1).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Tollgate did not start within {timeout}s:\n{server.log_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)  # quick shutdown: idle keep-alive clients need no grace
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)

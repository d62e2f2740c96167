"""Database connections on the hot path: hand them back early; make SQLite safe under gevent.

`release_connection` gives a PostgreSQL connection back to the pool right after a lookup, so a
request never holds one while it waits on a provider. A SQLite "connection" holds nothing on a
server, and opening one costs ~2 ms (Django registers its SQL functions on each), so SQLite
connections stay open for the green thread's life (CONN_MAX_AGE=None in settings).

For SQLite (the embedded default) two more facts drive this module:
- SQLite checkpoints its write-ahead log and deletes it when the *last* connection to the file
  closes. Django closes a connection after every request, so without care each request paid a
  checkpoint (~1 ms here). One connection kept open per process (`anchor`) means a request's
  close is never the last.
- When a write transaction finds the file locked, SQLite's busy handler sleeps in C, which
  blocks every green thread of a gevent worker — including the one holding the lock, if it is in
  the same process, until the busy timeout gives "database is locked". So writers within one
  process take turns on a cooperative lock (`write_lock`) first; SQLite's own lock then only
  arbitrates between processes, whose transactions are short.
"""

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator

from django.db import connection

_anchor: sqlite3.Connection | None = None
_write_lock = threading.Lock()  # gevent's patched lock in a gevent worker: waiting yields


def is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def release_connection() -> None:
    """Give the DB connection back now: the request goes on to wait on a provider without it."""
    if not is_sqlite() and not connection.in_atomic_block:
        connection.close()


def anchor(path: str) -> None:
    """Keep one connection to the database file open for the life of the process."""
    global _anchor
    if _anchor is None and path and path != ":memory:" and not path.startswith("file:"):
        _anchor = sqlite3.connect(path, check_same_thread=False)
        # A read in WAL mode makes it hold the shared WAL-index lock that marks it as open.
        _anchor.execute("PRAGMA journal_mode=WAL").fetchall()
        _anchor.execute("SELECT count(*) FROM sqlite_master").fetchall()


@contextlib.contextmanager
def write_lock() -> Iterator[None]:
    """Hold around a write transaction: one writer at a time on SQLite, no-op elsewhere.

    Within a process, writers queue on a gevent lock. Between processes (gunicorn workers), they
    queue on an advisory lock on a file beside the database, taken by polling with gevent-friendly
    sleeps: had they met on SQLite's own lock instead, its busy handler would sleep in C and freeze
    every green thread of the waiting worker — with a usage row written per request, that turned
    into second-long stalls at 100 connections.
    """
    if not is_sqlite():
        yield
        return
    with _write_lock:
        descriptor = _lock_file()
        if descriptor is None:
            yield
            return
        _take(descriptor)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


_lock_files: dict[str, int | None] = {}
LOCK_WAIT_LIMIT = 30.0  # seconds of polling before waiting plainly (another process stuck: rare)


def _lock_file() -> int | None:
    """The descriptor of `<database>-write.lock`, opened once per process; None for in-memory databases."""
    path = str(connection.settings_dict.get("NAME") or "")
    if path not in _lock_files:
        usable = path and path != ":memory:" and not path.startswith("file:")
        _lock_files[path] = os.open(f"{path}-write.lock", os.O_RDWR | os.O_CREAT, 0o600) if usable else None
    return _lock_files[path]


def _take(descriptor: int) -> None:
    pause, deadline = 0.0002, time.monotonic() + LOCK_WAIT_LIMIT
    while time.monotonic() < deadline:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(pause)  # gevent's sleep in a worker: the others run meanwhile
            pause = min(pause * 2, 0.005)
    fcntl.flock(descriptor, fcntl.LOCK_EX)

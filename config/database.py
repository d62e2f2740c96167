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
import sqlite3
import threading
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
    """Hold around a write transaction: one writer per process at a time on SQLite, no-op elsewhere."""
    if not is_sqlite():
        yield
        return
    with _write_lock:
        yield

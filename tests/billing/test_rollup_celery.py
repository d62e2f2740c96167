"""The rollup on a real Celery worker: two runs at once, and a worker killed mid-run, give exact totals.

Needs what production has: PostgreSQL (other processes must see the test's committed rows, and
rollups overlap only there) and Redis as the broker. The worker is `celery -A config worker`, a
prefork pool of two, started on the test database (pytest-django's `test_<name>`) and on a queue of
its own, so no other worker or beat on the same Redis takes these tasks or sees them.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing.models import DailyUsage, UsageRecord
from billing.tasks import rollup_usage
from tenants import keys
from tenants.models import Team, VirtualKey

pytestmark = pytest.mark.django_db(transaction=True)  # the worker reads only committed rows

ROOT = Path(__file__).resolve().parents[2]
UNIT = Decimal(1) / 1024


@pytest.fixture(autouse=True)
def needs_postgres_and_redis(db):
    if not settings.REDIS_URL:
        pytest.skip("No REDIS_URL: a Celery worker needs a Redis broker (without one, tasks run in-process)")
    if connection.vendor != "postgresql":
        pytest.skip("Not PostgreSQL: a worker process cannot see an SQLite test database's rows")


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue of this test's own; the test process sends for real (not eagerly) meanwhile."""
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    name = f"tollgate-test-rollup-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        app.conf.task_always_eager = eager
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for leftover in broker.scan_iter(f"*{name}*"):  # the queue and its kombu bindings
            broker.delete(leftover)


def results_url() -> str:
    """Task results on a Redis database of their own (5), next to the broker's."""
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/5", "", ""))


def database_url() -> str:
    """The database this test process uses (pytest-django's test_<name>), as a URL for the worker."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def worker(queue: str, *, batch: int = 100) -> Iterator[subprocess.Popen]:
    """Run `celery -A config worker` on `queue`; SIGKILL its process group on the way out, whatever happens."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": results_url(),
        "TOLLGATE_ROLLUP_BATCH": str(batch),
        "TOLLGATE_EMBEDDED_BEAT": "0",
    }
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        *(sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=info"),
        *("--concurrency=2", "--pool=prefork", "-Q", queue, "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        kill(process)
        log.close()
        print(f"--- worker log (exit {process.returncode}) ---")  # pytest shows it when the test failed
        print(Path(log.name).read_text()[-4000:])
        Path(log.name).unlink(missing_ok=True)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool children (one process group): no clean shutdown, as in a crash."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def send(queue: str):
    from config.celery import app

    sent = rollup_usage.apply_async(queue=queue)  # .delay(), on this test's queue
    return app.AsyncResult(sent.id, backend=result_backend())


def outcome(result, *, seconds: float = 60) -> int:
    """The task's return value, waited for at most `seconds`; its stored result is then deleted."""
    try:
        return result.get(timeout=seconds)
    finally:
        result.forget()


def result_backend():
    from celery.backends.redis import RedisBackend

    from config.celery import app

    return RedisBackend(app=app, url=results_url())


def make_rows(count: int, key: VirtualKey) -> None:
    """`count` pending usage rows of `key`'s team, a few failed, with varied exact costs."""
    ended = timezone.now()
    UsageRecord.objects.bulk_create(
        [
            UsageRecord(
                request_id=f"r{i}",
                started_at=ended,
                ended_at=ended,
                endpoint="chat",
                key_hash=key.token,
                key_id=key.pk,
                team_id=key.team.team_id,
                end_user=f"u{i % 3}",
                model="small",
                provider="mistral",
                prompt_tokens=3,
                completion_tokens=2,
                total_tokens=5,
                cost=(i % 7) * UNIT,
                status=500 if i % 13 == 0 else 200,
            )
            for i in range(count)
        ],
        batch_size=5000,
    )


def assert_exact_totals(key: VirtualKey) -> None:
    """Every usage row counted exactly once: the daily table and the key's spend add up to the ledger."""
    rows = list(UsageRecord.objects.values("cost", "total_tokens", "status", "rolled_up"))
    daily = list(DailyUsage.objects.values("requests", "errors", "total_tokens", "spend"))
    spend = sum((r["cost"] for r in rows), Decimal(0))
    assert all(r["rolled_up"] for r in rows)
    assert sum(d["requests"] for d in daily) == len(rows)
    assert sum(d["errors"] for d in daily) == sum(r["status"] >= 400 for r in rows)
    assert sum(d["total_tokens"] for d in daily) == sum(r["total_tokens"] for r in rows)
    assert sum((d["spend"] for d in daily), Decimal(0)) == spend
    assert VirtualKey.objects.get(pk=key.pk).spend == spend
    assert Team.objects.get(pk=key.team.pk).spend == spend


@pytest.fixture
def key() -> VirtualKey:
    return keys.create(team=Team.objects.create(team_id="team-a"))[0]


def wait_until(condition, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


def transactions_of_others() -> list:
    """Transactions still open on the test database in other sessions (a killed client's end soon)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, application_name, left(query, 60) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND xact_start IS NOT NULL"
        )
        return cursor.fetchall()


def test_two_rollups_at_once_on_a_worker_count_every_row_once(queue, key):
    make_rows(3000, key)

    with worker(queue, batch=50):
        first, second = send(queue), send(queue)  # both queued before the worker takes either
        counted = [outcome(first), outcome(second)]

    assert sum(counted) == 3000, counted
    assert_exact_totals(key)


def test_a_worker_killed_mid_rollup_loses_nothing_and_counts_nothing_twice(queue, key):
    total = 20_000
    make_rows(total, key)
    rolled = UsageRecord.objects.filter(rolled_up=True)

    with worker(queue, batch=50) as process:
        send(queue)
        wait_until(lambda: rolled.count() >= 1000, seconds=60, what="the rollup to get going")
        kill(process)
    assert process.returncode == -signal.SIGKILL
    wait_until(lambda: not transactions_of_others(), seconds=10, what="the killed worker's transaction to end")
    before = rolled.count()
    assert 0 < before < total, "the worker must die mid-run: make the rollup slower (more rows, smaller batches)"
    # Whatever committed before the kill is whole: counted rows and the daily table agree.
    assert sum(DailyUsage.objects.values_list("requests", flat=True)) == before

    with worker(queue, batch=500):
        assert outcome(send(queue)) == total - before

    assert_exact_totals(key)

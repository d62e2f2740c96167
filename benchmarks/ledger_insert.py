"""What settling writes on the hot path, measured alone: the usage row's INSERT.

Runs Tollgate's own settle step — `tenants.limits.settle` with `billing.ledger.record`, as
`proxy/calls.py` calls it — N times in a row against a fresh database, and reports wall time and
CPU per call. Two shapes:
- `plain`: a key without limits (or the master key, or the Redis path): one INSERT, autocommit;
- `limited`: a key with a budget and rate limits on the database path (no Redis): the scope rows'
  UPDATE and the INSERT in one transaction — the whole durable write of a settle.

    python benchmarks/ledger_insert.py                       # SQLite file in a temp dir
    python benchmarks/ledger_insert.py --database postgres://postgres@127.0.0.1:5432/postgres

With PostgreSQL, a scratch database is created next to the one named and dropped afterwards.
Prints one JSON object; benchmarks/run.py folds it into its report.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def in_subprocesses(postgres_url: str, *, calls: int) -> list[dict]:
    """Run this script on SQLite, and on PostgreSQL when a URL is given, each in its own process
    (Django is set up once per process); what benchmarks/run.py puts in its report."""
    measured = []
    for database in ["", postgres_url] if postgres_url else [""]:
        print(f"[ledger] timing the usage-row write on {database.split(':', 1)[0] or 'sqlite'}", flush=True)
        command = [sys.executable, __file__, "--calls", str(calls)] + (["--database", database] if database else [])
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PROJECT)
        if done.returncode == 0:
            measured.append(json.loads(done.stdout.strip().splitlines()[-1]))
        else:
            measured.append({"database": database or "sqlite", "failed": done.stderr.strip()[-500:]})
    return measured


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default="", help="a postgres:// URL (default: SQLite in a temp dir)")
    ap.add_argument("--calls", type=int, default=3000)
    args = ap.parse_args()
    with scratch_database(args.database) as url:
        print(json.dumps(measure(url, args.calls)))
    return 0


class scratch_database:
    """A fresh database for one run: a SQLite file, or a PostgreSQL database created and dropped."""

    def __init__(self, base: str) -> None:
        self.base, self.name, self.tmp = base, "", None

    def __enter__(self) -> str:
        if not self.base.startswith("postgres"):
            self.tmp = tempfile.TemporaryDirectory(prefix="tollgate-ledger-bench-")
            return f"sqlite:///{self.tmp.name}/bench.db"
        import psycopg

        self.name = f"tollgate_ledger_bench_{os.getpid()}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.base.rsplit("/", 1)[0] + "/" + self.name

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()
        if self.name:
            import psycopg
            from django.db import connections

            connections.close_all()
            with psycopg.connect(self.base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def measure(database_url: str, calls: int) -> dict:
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL="",
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_SECRET_KEY="ledger-bench-secret-key-not-for-production",
        TOLLGATE_LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from billing import ledger
    from tenants import keys, limits
    from tenants.auth import Caller

    plain_key, _ = keys.create()
    limited_key, _ = keys.create(max_budget=Decimal(10**6), rpm_limit=10**9, tpm_limit=10**15)
    results = {"database": database_url.split(":", 1)[0], "calls": calls}
    for shape, key in (("plain", plain_key), ("limited", limited_key)):
        caller = Caller(kind="key", hint=key.key_name, key=keys.record(key.token))
        results[shape] = _run(caller, calls, ledger, limits)
    return results


def _run(caller, calls: int, ledger, limits) -> dict:
    cost, tokens = Decimal("0.0000123"), 30
    durations = []
    cpu_before = _cpu()
    for _ in range(calls):
        reservation = limits.admit(caller, cost=cost, tokens=tokens)  # not timed: admission is not the write
        outcome = ledger.Outcome(
            request_id=uuid.uuid4().hex,
            started_at=time.time(),
            endpoint="chat",
            status=200,
            key_hash=caller.key.token,
            key_name=caller.hint,
            model="bench",
            provider="mistral",
            provider_model="mistral-small-latest",
            prompt_tokens=20,
            completion_tokens=10,
            cost=cost,
        )
        started = time.perf_counter()
        limits.settle(
            reservation, cost=cost, tokens=tokens, record=lambda charged, o=outcome: ledger.record(o, charged)
        )
        durations.append((time.perf_counter() - started) * 1e6)
    cpu_us = (_cpu() - cpu_before) * 1e6 / calls
    durations.sort()
    return {
        "p50_us": round(statistics.median(durations), 1),
        "p99_us": round(durations[int(len(durations) * 0.99) - 1], 1),
        "mean_us": round(statistics.fmean(durations), 1),
        # CPU of admission and settling together, per call: the write's share is the wall time above.
        "admit_and_settle_cpu_us": round(cpu_us, 1),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())

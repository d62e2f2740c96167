"""The ledger under failure, through real gunicorn: a worker killed with -9 mid-load, Redis killed
and started again mid-load. Whatever dies, every answer a client received whole has exactly one
usage row, and spend is counted from the rows exactly once.

Each caller sends its own `x-request-id`, so even a caller whose connection was cut can be matched
with the rows (or their absence) in the server's database, read directly.
"""

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import reliability
from tests.e2e.conftest import E2E_KEY
from tests.e2e.reliability import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    Answer,
    PrivateRedis,
    SlowMistral,
    ask,
    children,
    open_files,
    pending_rollup,
    usage_rows,
    wait_for,
)
from tests.e2e.server import Tollgate, database, running
from tests.e2e.test_budgets_e2e import call, generate

IN, OUT = Decimal("0.000001"), Decimal("0.000002")
COST = PROMPT_TOKENS * IN + COMPLETION_TOKENS * OUT  # what every answer of the slow upstream costs
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture(scope="module")
def upstream() -> Iterator[SlowMistral]:
    with SlowMistral.running() as fake:
        yield fake


def settled_spend(server: Tollgate, database_url: str, key: str) -> Decimal:
    """The key's spend once the rollup (every 0.2 s in these servers) has counted every row."""
    wait_for(lambda: pending_rollup(database_url) == 0, timeout=15, what="the rollup to count every usage row")
    info = call(server, "GET", f"/key/info?key={key}", server.key)
    assert info.status == 200, info.data
    return Decimal(str(info.json()["info"]["spend"]))


# --- kill -9 of a gunicorn worker --------------------------------------------------------------------

CALLS = 500
CALLERS = 100


def test_kill_9_of_a_worker_leaves_every_complete_answer_billed_once(tmp_path: Path, upstream: SlowMistral):
    upstream.seconds = 1.0  # so that about a hundred answers are in flight at the kill
    config = tmp_path / "litellm_config.yaml"
    config.write_text(reliability.config(upstream, master_key=E2E_KEY, input_price=IN, output_price=OUT))
    env = {"REDIS_URL": REDIS_URL}  # admission in the shared Redis when CI has one, else the database
    with database(tmp_path) as database_url:
        options = {"key": E2E_KEY, "tmp": tmp_path, "workers": 2, "env": env, "database_url": database_url}
        with running(config, **options) as server:
            key = generate(server, max_budget="1000", rpm_limit=1_000_000)
            master = server.process.pid
            workers = children(master)
            assert len(workers) == 2, workers

            deadline = time.monotonic() + 40
            seen = len(upstream.requests)
            with ThreadPoolExecutor(CALLERS) as pool:
                futures = [
                    pool.submit(ask, server.url, key, f"kill9-{i:03d}", stream=i % 2 == 0, deadline=deadline)
                    for i in range(CALLS)
                ]
                # Past the first wave: every caller busy, answers in flight on both workers.
                wait_for(lambda: len(upstream.requests) >= seen + 150, timeout=20, what="150 upstream calls")
                victim = max(workers, key=open_files)
                os.kill(victim, signal.SIGKILL)
                killed_at = time.monotonic()
                answers = [f.result() for f in futures]

            # The master replaces the worker, and the new one serves.
            wait_for(lambda: len(children(master) - {victim}) == 2, timeout=20, what="a new worker")
            new_worker = (children(master) - workers).pop()
            wait_for(lambda: f"Booting worker with pid: {new_worker}" in server.log_text(), timeout=5, what="a boot")
            with ThreadPoolExecutor(20) as pool:
                after = list(
                    pool.map(
                        lambda i: ask(server.url, key, f"after-{i:02d}", stream=i % 2 == 0, deadline=deadline + 20),
                        range(20),
                    )
                )
            spent = settled_spend(server, database_url, key)
            rows = usage_rows(database_url, prefix="kill9-") + usage_rows(database_url, prefix="after-")
            log = server.log_text()

    assert f"Worker (pid:{victim})" in log, "gunicorn did not report the killed worker"
    assert all(a.complete for a in after), [a for a in after if not a.complete][:3]

    everything = answers + after
    complete = [a for a in everything if a.complete]
    cut = [a for a in everything if not a.complete]
    assert not [a for a in cut if a.error.startswith("not sent")], "the load outlasted its deadline"
    assert cut, "the kill cut no request: nothing was tested"
    assert all(a.ended >= killed_at for a in cut), [a for a in cut if a.ended < killed_at][:3]

    by_id = Counter(row.request_id for row in rows)
    assert max(by_id.values()) == 1, [i for i, n in by_id.items() if n > 1]  # never two rows for one request
    row_of = {row.request_id: row for row in rows}
    unbilled = [a.request_id for a in complete if a.request_id not in row_of]
    assert not unbilled, f"{len(unbilled)} complete answers have no usage row: {unbilled[:5]}"
    for answer in complete:
        row = row_of[answer.request_id]
        assert (row.status, row.stream, row.prompt_tokens, row.completion_tokens, row.cost) == (
            200,
            answer.stream,
            PROMPT_TOKENS,
            COMPLETION_TOKENS,
            COST,
        ), (answer, row)
        assert answer.cost in (None, COST)
    assert spent == sum((row.cost for row in rows), Decimal(0))  # each row counted once

    streams_cut = sum(a.stream for a in cut)
    print(
        f"\nkill -9 of worker {victim}: {len(complete)} complete, {len(cut)} cut "
        f"({streams_cut} streams, {len(cut) - streams_cut} JSON), "
        f"{sum(a.request_id in row_of for a in cut)} of the cut have a row; "
        f"new worker {new_worker}, 20/20 served after"
    )


# --- Redis killed and started again mid-load -------------------------------------------------------

REDIS_CALLS, REDIS_CALLERS = 600, 16
# Admission also holds each caller's worst case (about 5 calls' cost), so this binds in the last
# third of the load, after the restart: the counters Redis starts again must start from the true spend.
BUDGET = COST * 560


@dataclass
class RedisRestart:
    answers: list[Answer]
    rows: list[reliability.Row]
    spent: Decimal
    log: str
    down_at: float
    up_at: float
    counters_after: list[bytes]  # budget counters in the restarted Redis


@pytest.fixture(scope="module")
def redis_restart(tmp_path_factory: pytest.TempPathFactory, upstream: SlowMistral) -> RedisRestart:
    """One load of budgeted calls through a private Redis killed (-9) after a third of the calls and
    started again, empty, after two thirds; the tests below read what happened."""
    if not ON_POSTGRES:
        pytest.skip("the Redis path with several workers runs on PostgreSQL: set DATABASE_URL=postgres://…")
    if not os.access(reliability.REDIS_SERVER, os.X_OK):
        pytest.skip(f"{reliability.REDIS_SERVER} is missing: this test kills and restarts a Redis of its own")
    tmp = tmp_path_factory.mktemp("redis-restart")
    upstream.seconds = 0.2
    config = tmp / "litellm_config.yaml"
    config.write_text(reliability.config(upstream, master_key=E2E_KEY, input_price=IN, output_price=OUT))

    with PrivateRedis.running(tmp) as redis, database(tmp) as database_url:
        options = {"key": E2E_KEY, "tmp": tmp, "workers": 2, "database_url": database_url}
        with running(config, env={"REDIS_URL": redis.url}, **options) as server:
            key = generate(server, max_budget=str(BUDGET), rpm_limit=1_000_000)  # admitted in Redis
            deadline = time.monotonic() + 40
            done: list[Answer] = []

            def one(i: int) -> Answer:
                answer = ask(server.url, key, f"redis-{i:03d}", stream=i % 4 == 0, deadline=deadline)
                done.append(answer)
                return answer

            with ThreadPoolExecutor(REDIS_CALLERS) as pool:
                futures = [pool.submit(one, i) for i in range(REDIS_CALLS)]
                wait_for(lambda: len(done) >= REDIS_CALLS // 3, timeout=20, what="the first third of the load")
                assert redis.keys("tg:budget:*"), "admission did not go through Redis"
                redis.kill()
                down_at = time.monotonic()
                wait_for(lambda: len(done) >= 2 * REDIS_CALLS // 3, timeout=20, what="the second third of the load")
                redis.start()
                up_at = time.monotonic()
                answers = [f.result() for f in futures]
            counters_after = redis.keys("tg:budget:*")
            spent = settled_spend(server, database_url, key)
            rows = usage_rows(database_url, prefix="redis-")
            log = server.log_text()
    return RedisRestart(answers, rows, spent, log, down_at, up_at, counters_after)


def test_redis_restart_mid_load_keeps_serving_and_loses_no_spend(redis_restart: RedisRestart):
    run = redis_restart
    statuses = Counter(a.status for a in run.answers)
    assert set(statuses) <= {200, 429}, (statuses, [a for a in run.answers if a.status not in (200, 429)][:3])
    assert all(a.complete for a in run.answers if a.status == 200)
    assert all(a.error == "budget_exceeded" for a in run.answers if a.status == 429)
    assert "Redis unavailable" in run.log, "Tollgate never fell back: the outage was not tested"
    during = [a for a in run.answers if run.down_at < a.started and a.ended < run.up_at]
    assert during and all(a.status == 200 for a in during), Counter((a.status, a.error) for a in during)
    assert run.counters_after, "admission did not go back to Redis once it was up again"

    by_id = Counter(row.request_id for row in run.rows)
    assert sorted(by_id) == sorted(a.request_id for a in run.answers), "a request without a row, or a stray row"
    assert set(by_id.values()) == {1}, [i for i, n in by_id.items() if n > 1]
    row_of = {row.request_id: row for row in run.rows}
    for answer in run.answers:
        row = row_of[answer.request_id]
        assert (row.status, row.cost) == (answer.status, COST if answer.status == 200 else 0), (answer, row)
        assert answer.cost in (None, row.cost), (answer, row)  # x-tollgate-cost: JSON answers
    recorded = sum((row.cost for row in run.rows), Decimal(0))
    assert recorded == COST * statuses[200]
    assert run.spent == recorded, f"spend {run.spent} != {recorded} recorded ({(run.spent - recorded) / COST:+} calls)"
    print(
        f"\nRedis down {run.up_at - run.down_at:.1f}s mid-load: {statuses[200]} served "
        f"({len(during)} while it was down), {statuses[429]} refused at the budget; spend {run.spent} of {BUDGET}"
    )


def test_a_budget_holds_across_a_redis_restart(redis_restart: RedisRestart):
    run = redis_restart
    refused = sum(a.status == 429 for a in run.answers)
    assert run.spent <= BUDGET, f"spend {run.spent} past the budget {BUDGET} by {(run.spent - BUDGET) / COST} calls"
    assert refused, "the budget never bound: raise the load or lower the budget"

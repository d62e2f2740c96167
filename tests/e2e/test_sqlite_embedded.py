"""The embedded default — SQLite, no Redis — under concurrent load through real gunicorn workers.

Every call with a limited virtual key writes twice (admission and settling); SQLite has one
writer at a time and its busy handler sleeps in C, which would stall a whole gevent worker.
This runs on SQLite whatever DATABASE_URL says, because that is the set-up `make run` gives.
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from tests.e2e.conftest import E2E_KEY
from tests.e2e.server import running
from tests.e2e.test_budgets_e2e import PRICED_CONFIG, chat, generate, spend

CONCURRENT = 50
CALLS = 200


def test_fifty_concurrent_callers_never_hit_database_is_locked(tmp_path):
    config = tmp_path / "litellm_config.yaml"
    config.write_text(PRICED_CONFIG)
    database_url = f"sqlite:///{tmp_path / 'embedded.db'}"
    with running(
        config, key=E2E_KEY, tmp=tmp_path, workers=2, env={"REDIS_URL": ""}, database_url=database_url
    ) as tollgate:
        key = generate(tollgate, max_budget=1000, rpm_limit=100_000, tpm_limit=10**9, max_parallel_requests=1000)

        with ThreadPoolExecutor(CONCURRENT) as pool:
            answers = list(pool.map(lambda _: chat(tollgate, key), range(CALLS)))

        statuses = [a.status for a in answers]
        log = tollgate.log_text()
        spent = spend(tollgate, key)

    assert statuses == [200] * CALLS, sorted(set(statuses))
    assert "database is locked" not in log
    costs = {Decimal(a.headers["x-tollgate-cost"]) for a in answers}
    assert len(costs) == 1
    assert spent == costs.pop() * CALLS  # every settled call counted once

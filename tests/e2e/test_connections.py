"""No database connection is held while a request waits on its provider (PostgreSQL, gevent).

A Tollgate whose workers may open only two database connections each serves many more
concurrent slow calls than that, all at once: if a request kept its connection while waiting
upstream, the calls would queue behind the pool and take several times as long.
"""

import concurrent.futures
import os
import time

import pytest
import urllib3

from tests.e2e.conftest import CONFIG, E2E_KEY
from tests.e2e.server import running
from tests.fakes.mistral import FakeMistral

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL (DATABASE_URL=postgres://...): the connection pool is what is tested",
)

CONCURRENT = 40
UPSTREAM_SECONDS = 1.0


def test_slow_upstream_calls_do_not_hold_database_connections(mistral_server, fake_mistral, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(mistral=mistral_server.url, key=E2E_KEY))
    env = {
        "E2E_MISTRAL_API_KEY": FakeMistral.API_KEY,
        "TOLLGATE_DB_POOL_SIZE": "2",
        "TOLLGATE_DEPLOYMENT_CACHE_SECONDS": "0",
    }
    with running(config, key=E2E_KEY, tmp=tmp_path, workers=1, env=env) as tollgate:
        for _ in range(CONCURRENT):
            fake_mistral.hang(UPSTREAM_SECONDS)
        http = urllib3.PoolManager(maxsize=CONCURRENT, retries=False, timeout=30)
        body = b'{"model": "mistral-small-latest", "messages": [{"role": "user", "content": "Hi"}]}'

        def call() -> int:
            return http.request(
                "POST",
                tollgate.url + "/v1/chat/completions",
                body=body,
                headers={"Authorization": f"Bearer {E2E_KEY}", "Content-Type": "application/json"},
            ).status

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
            statuses = list(pool.map(lambda _: call(), range(CONCURRENT)))
        elapsed = time.monotonic() - started

    assert statuses == [200] * CONCURRENT
    # Held connections would make 40 one-second calls take ~20 s through a pool of two.
    assert elapsed < UPSTREAM_SECONDS * 5, f"{CONCURRENT} concurrent calls took {elapsed:.1f}s"

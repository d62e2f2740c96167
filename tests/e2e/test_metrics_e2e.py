"""/metrics through a real gunicorn with two workers: whichever worker a scrape reaches, it reports
every worker's counts (prometheus_client's multiprocess mode, config/gunicorn.py)."""

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import E2E_KEY
from tests.e2e.server import Tollgate, running

CONFIG = f"""\
model_list:
  - model_name: mock-model
    litellm_params:
      model: mistral/mistral-small-latest
      mock_response: "A mock answer."

general_settings:
  master_key: {E2E_KEY}
"""
CALLS = 60
HTTP = urllib3.PoolManager(maxsize=16, retries=False, timeout=urllib3.Timeout(total=15))


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("prometheus")
    (directory / "counter_999999.db").write_bytes(b"left by an earlier run")
    return directory


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, metrics_dir: Path) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("metrics")
    config = tmp / "litellm_config.yaml"
    config.write_text(CONFIG)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with running(config, key=E2E_KEY, tmp=tmp, workers=2, env=env) as server:
        yield server


def chat(server: Tollgate) -> int:
    body = json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]})
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json", "Connection": "close"}
    return urllib3.request(
        "POST", f"{server.url}/v1/chat/completions", body=body, headers=headers, retries=False
    ).status


def requests_counted(server: Tollgate) -> float:
    text = HTTP.request("GET", f"{server.url}/metrics", headers={"Connection": "close"}).data.decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tollgate_requests_total" and sample.labels.get("model") == "mock-model"
    )


def test_counts_are_summed_across_workers(two_workers: Tollgate, metrics_dir: Path):
    # New connections, spread over both workers by the kernel; a loaded machine may hand one worker
    # a whole round, so rounds go on (at most 10) until both have counted calls.
    sent = 0
    for _ in range(10):
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(lambda _: chat(two_workers), range(CALLS)))
        assert statuses == [200] * CALLS
        sent += CALLS
        time.sleep(1.2)  # each worker hands its values over once a second
        if len({p.name for p in metrics_dir.glob("counter_*.db")} - {"counter_999999.db"}) == 2:
            break

    deadline = time.monotonic() + 5
    while requests_counted(two_workers) < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    scrapes = [requests_counted(two_workers) for _ in range(6)]

    assert scrapes == [sent] * 6
    writers = {p.name for p in metrics_dir.glob("counter_*.db")}
    assert "counter_999999.db" not in writers  # the earlier run's file was cleared at start
    assert len(writers) == 2, writers  # both workers served calls and wrote their counts

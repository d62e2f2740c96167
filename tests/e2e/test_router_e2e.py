"""The router across instances: a cooldown one instance starts is honoured by the other.

Two `runproxy` servers on one PostgreSQL database and one Redis act as two instances of one
installation; the deployment failing on instance A must be left out by instance B within about
a second (deployment_state polls the shared cooldowns every 0.5 s).
"""

import json
import os
import time
from collections.abc import Iterator

import pytest
import urllib3

from tests.e2e.conftest import E2E_KEY
from tests.e2e.server import Tollgate, database, running
from tests.fakes.mistral import FakeMistral

REDIS_URL = os.environ.get("REDIS_URL", "")
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=15))
CONFIG = """\
model_list:
  - model_name: group
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: {key}
      api_base: {flaky}
      order: 1
  - model_name: group
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: {key}
      api_base: {steady}
      order: 2

router_settings:
  allowed_fails: 1
  cooldown_time: 30
  num_retries: 0

general_settings:
  master_key: {master}
"""


def chat(server: Tollgate) -> urllib3.BaseHTTPResponse:
    body = json.dumps({"model": "group", "messages": [{"role": "user", "content": "Hi"}]})
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}
    return HTTP.request("POST", f"{server.url}/v1/chat/completions", body=body, headers=headers)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeMistral, FakeMistral]]:
    with FakeMistral.running() as flaky, FakeMistral.running() as steady:
        yield flaky, steady


@pytest.fixture(scope="module")
def instances(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeMistral, FakeMistral]
) -> Iterator[tuple[Tollgate, Tollgate]]:
    if not (ON_POSTGRES and REDIS_URL):
        pytest.skip(
            "two instances share cooldowns through PostgreSQL and Redis: set DATABASE_URL=postgres… and REDIS_URL"
        )
    flaky, steady = fakes
    tmp = tmp_path_factory.mktemp("router")
    config = tmp / "litellm_config.yaml"
    config.write_text(CONFIG.format(key=FakeMistral.API_KEY, flaky=flaky.url, steady=steady.url, master=E2E_KEY))
    with database(tmp) as database_url:
        options = {"key": E2E_KEY, "tmp": tmp, "workers": 2, "env": {"REDIS_URL": REDIS_URL}}
        with (
            running(config, database_url=database_url, **options) as a,
            running(config, database_url=database_url, **options) as b,
        ):
            yield a, b


def test_a_cooldown_started_on_one_instance_is_honoured_by_the_other(
    instances: tuple[Tollgate, Tollgate], fakes: tuple[FakeMistral, FakeMistral]
):
    a, b = instances
    flaky, steady = fakes
    first_tier = chat(b)
    assert first_tier.status == 200
    flaky_id = first_tier.headers["x-tollgate-deployment"]  # order 1: the flaky fake's deployment
    flaky.fail(503)
    flaky.fail(503)

    assert [chat(a).status for _ in range(2)] == [503, 503]  # past allowed_fails: cooling down
    cooled_at = time.monotonic()
    seen_after = None
    while time.monotonic() - cooled_at < 3:
        answer = chat(b)
        assert answer.status == 200, answer.data
        if answer.headers["x-tollgate-deployment"] != flaky_id:
            seen_after = time.monotonic() - cooled_at
            break
        time.sleep(0.05)

    assert seen_after is not None and seen_after <= 1.2, seen_after
    assert len(steady.requests) >= 1
    assert {chat(b).headers["x-tollgate-deployment"] for _ in range(5)} != {flaky_id}
    print(f"instance B left the deployment out {seen_after:.3f}s after instance A cooled it down")

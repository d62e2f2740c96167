"""Budgets and rate limits through real gunicorn servers: exact under concurrency, shared by instances.

The admission path is Redis's when REDIS_URL is set in the environment, the database's otherwise.
"""

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import openai
import pytest
import urllib3
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.e2e.conftest import E2E_KEY
from tests.e2e.server import ROOT, Tollgate, database, running

MOCK_RESPONSE = "A priced mock answer."
PRICE = Decimal("0.000001")
PRICED_CONFIG = f"""\
model_list:
  - model_name: priced
    litellm_params:
      model: mistral/mistral-small-latest
      mock_response: "{MOCK_RESPONSE}"
      input_cost_per_token: {PRICE}
      output_cost_per_token: {PRICE}

general_settings:
  master_key: {E2E_KEY}
"""
BODY = json.dumps({"model": "priced", "messages": [{"role": "user", "content": "Hi"}]}).encode()
# What admission reserves per call: every body byte a prompt token, the mock's every byte an answer token.
WORST_CASE = (len(BODY) + len(MOCK_RESPONSE.encode())) * PRICE

REDIS_URL = os.environ.get("REDIS_URL", "")
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
HTTP = urllib3.PoolManager(maxsize=64, retries=False, timeout=urllib3.Timeout(total=15))


def call(server: Tollgate, method: str, path: str, key: str, body: dict | None = None) -> urllib3.BaseHTTPResponse:
    return HTTP.request(method, f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"})


def chat(server: Tollgate, key: str) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return HTTP.request("POST", f"{server.url}/v1/chat/completions", body=BODY, headers=headers)


def generate(server: Tollgate, **fields) -> str:
    made = call(server, "POST", "/key/generate", server.key, fields)
    assert made.status == 200, made.data
    return made.json()["key"]


def spend(server: Tollgate, key: str) -> Decimal:
    """The key's spend once the rollup has counted every usage row (it runs every 0.2 s here)."""
    deadline = time.monotonic() + 10
    last = None
    while True:
        info = call(server, "GET", f"/key/info?key={key}", server.key)
        assert info.status == 200, info.data
        now = Decimal(str(info.json()["info"]["spend"]))
        if now == last or time.monotonic() > deadline:
            return now
        last = now
        time.sleep(0.5)


def error_code(response: urllib3.BaseHTTPResponse) -> str | None:
    return response.json().get("error", {}).get("code")


def environment() -> dict[str, str]:
    return {"REDIS_URL": REDIS_URL} if REDIS_URL else {}


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("priced")
    config = tmp / "litellm_config.yaml"
    config.write_text(PRICED_CONFIG)
    with running(config, key=E2E_KEY, tmp=tmp, workers=2, env=environment()) as server:
        yield server


def test_200_concurrent_calls_never_spend_past_the_budget(priced: Tollgate):
    budget = WORST_CASE * 10
    key = generate(priced, max_budget=str(budget))

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: chat(priced, key), range(200)))

    statuses = Counter(a.status for a in answers)
    assert set(statuses) <= {200, 429}, statuses
    refused = [a for a in answers if a.status == 429]
    assert refused and all(error_code(a) == "budget_exceeded" for a in refused), refused[:1] and refused[0].data
    admitted = [a for a in answers if a.status == 200]
    assert len(admitted) >= 10, statuses
    costs = {Decimal(a.headers["x-tollgate-cost"]) for a in admitted}
    assert len(costs) == 1, costs  # one body, one mock answer: one cost
    per_call = costs.pop()
    assert 0 < per_call <= WORST_CASE

    spent = spend(priced, key)
    assert spent <= budget
    assert spent == per_call * len(admitted)
    print(f"admitted {len(admitted)}/200, spend {spent} of budget {budget} ({per_call}/call, worst {WORST_CASE})")


# --- two instances sharing PostgreSQL and Redis ------------------------------------------------


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tollgate, Tollgate]]:
    if not (ON_POSTGRES and REDIS_URL):
        pytest.skip(
            "two instances share state only through PostgreSQL and Redis: set DATABASE_URL=postgres… and REDIS_URL"
        )
    tmp = tmp_path_factory.mktemp("instances")
    config = tmp / "litellm_config.yaml"
    config.write_text(PRICED_CONFIG)
    with database(tmp) as database_url:
        options = {"key": E2E_KEY, "tmp": tmp, "workers": 2, "env": environment(), "database_url": database_url}
        with running(config, **options) as a, running(config, **options) as b:  # one after the other: one migrate
            yield a, b


def test_an_rpm_limit_is_shared_by_both_instances(instances: tuple[Tollgate, Tollgate]):
    a, b = instances
    if 60 - time.time() % 60 < 5:  # a fixed calendar-minute window: don't straddle its end
        time.sleep(60 - time.time() % 60 + 0.1)
    key = generate(a, rpm_limit=5)

    assert [chat(server, key).status for server in (a, b, a, b, a)] == [200] * 5
    for server in (a, b):
        refused = chat(server, key)
        assert refused.status == 429 and error_code(refused) == "rate_limit_exceeded", refused.data
        assert int(refused.headers["Retry-After"]) >= 1


def test_a_budget_is_shared_by_both_instances(instances: tuple[Tollgate, Tollgate]):
    a, b = instances
    key = generate(b, max_budget=str(WORST_CASE * 3))  # room for 3 worst cases, real calls cost less

    statuses = []
    for i in range(40):  # bounded: the budget ends well before
        statuses.append(chat((a, b)[i % 2], key).status)
        if statuses[-1] != 200:
            break
    assert statuses[-1] == 429 and len(statuses) > 3, statuses
    for server in (a, b):
        refused = chat(server, key)
        assert refused.status == 429 and error_code(refused) == "budget_exceeded", refused.data
    spent = spend(a, key)
    assert spent == spend(b, key) <= WORST_CASE * 3


def test_a_key_blocked_on_one_instance_is_refused_by_the_other_within_a_second(
    instances: tuple[Tollgate, Tollgate],
):
    a, b = instances
    key = generate(a)
    assert chat(b, key).status == 200 and chat(a, key).status == 200

    assert call(a, "POST", "/key/block", a.key, {"key": key}).status == 200
    blocked_at = time.monotonic()
    refused_after = None
    while time.monotonic() - blocked_at < 1.5:
        if chat(b, key).status == 401:
            refused_after = time.monotonic() - blocked_at
            break
        time.sleep(0.1)
    assert refused_after is not None and refused_after <= 1.0, refused_after
    print(f"instance B refused the key {refused_after:.3f}s after instance A blocked it")


# --- SDK error types for refusals of virtual keys ----------------------------------------------

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def refusals(tollgate: Tollgate) -> list[tuple[int, str, str]]:
    """(status, key, model): calls the session Tollgate refuses before any upstream call."""
    blocked = generate(tollgate, models=["mock-model"])
    assert call(tollgate, "POST", "/key/block", tollgate.key, {"key": blocked}).status == 200
    deadline = time.monotonic() + 5  # every worker sees the block within TOLLGATE_AUTH_CACHE_SECONDS
    while (
        call(tollgate, "POST", "/v1/chat/completions", blocked, {"model": "mock-model", "messages": HI}).status != 401
    ):
        assert time.monotonic() < deadline, "the blocked key is still served"
        time.sleep(0.1)
    return [
        (401, blocked, "mock-model"),
        (403, generate(tollgate, models=["mistral-embed"]), "mock-model"),  # a model outside the key's models
        # A priced model whose worst case (its list price's output limit) is far above the budget.
        (429, generate(tollgate, max_budget="0.000001"), "mistral-small-latest"),
        (429, generate(tollgate, rpm_limit=0), "mock-model"),  # no request fits in any minute
    ]


def test_openai_sdk_raises_its_error_types(tollgate: Tollgate, refusals: list[tuple[int, str, str]]):
    expected = {401: openai.AuthenticationError, 403: openai.PermissionDeniedError, 429: openai.RateLimitError}
    for status, key, model in refusals:
        client = openai.OpenAI(api_key=key, base_url=f"{tollgate.url}/v1", max_retries=0, timeout=10)
        with pytest.raises(expected[status]) as raised:
            client.chat.completions.create(model=model, messages=HI)
        assert raised.value.status_code == status


def test_mistral_sdk_raises_sdk_error_with_the_status(tollgate: Tollgate, refusals: list[tuple[int, str, str]]):
    for status, key, model in refusals:
        client = Mistral(api_key=key, server_url=tollgate.url, timeout_ms=10000)
        with pytest.raises(SDKError) as raised:
            client.chat.complete(model=model, messages=HI)
        assert raised.value.status_code == status


def test_legacy_mistral_sdk_raises_with_the_status(tollgate: Tollgate, refusals: list[tuple[int, str, str]]):
    legacy = ROOT / ".venv-legacy" / "bin" / "python"
    if not legacy.exists():
        pytest.skip("legacy SDK venv missing: `make test` creates .venv-legacy")
    script = Path(__file__).with_name("legacy_client.py")
    for status, key, model in refusals:
        done = subprocess.run(
            [str(legacy), str(script), tollgate.url, key, "chat_model", model],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == status

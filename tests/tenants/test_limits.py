"""Admission against budgets and rate limits, on the database path and the Redis path.

Deployments here are mock models with explicit prices, so costs are known exactly: the mock's
usage is estimated at ~4 characters a token, and the worst case reserves body bytes + max_tokens.
"""

import os
import time
import uuid
from decimal import Decimal

import pytest

from billing import ledger, rollup
from tenants import keys, limits
from tenants.auth import Caller
from tenants.exceptions import BudgetExceeded, RateLimited
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey
from tests.tenants.conftest import bearer

PRICE = Decimal("0.000001")  # $1 per million tokens, in and out


def settle(reservation: limits.Reservation, caller: Caller, *, cost: Decimal, tokens: int) -> None:
    """Settle as the hot path does: with the request's usage row, then count the ledger into spend."""

    def record(charged: tuple[str, ...]) -> None:
        outcome = ledger.Outcome(
            request_id=uuid.uuid4().hex, started_at=time.time(), endpoint="chat", status=200, cost=cost
        )
        outcome.key_hash = caller.key.token if caller.key else ""
        outcome.key_id = caller.key.pk if caller.key else None
        ledger.record(outcome, charged)

    limits.settle(reservation, cost=cost, tokens=tokens, record=record)
    rollup.run()


REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.3).ping())
    except Exception:
        return False


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    settings.TOLLGATE_AUTH_CACHE_SECONDS = 0
    settings.TOLLGATE_DEPLOYMENT_CACHE_SECONDS = 0
    if request.param == "redis":
        if not redis_reachable():
            pytest.skip(f"Redis not reachable at {REDIS_URL}: the Redis admission path is not tested")
        import redis

        from tenants import redis_limits

        settings.REDIS_URL = REDIS_URL
        redis_limits._client = None
        for name in redis.Redis.from_url(REDIS_URL).scan_iter("tg:*"):
            redis.Redis.from_url(REDIS_URL).delete(name)
    else:
        settings.REDIS_URL = ""
    yield request.param


@pytest.fixture
def priced(deployment_for):
    return deployment_for(
        None,
        alias="priced",
        model="mistral/mistral-small-latest",
        mock_response="four word mock answer",
        input_cost_per_token=PRICE,
        output_cost_per_token=PRICE,
    )


def chat(client, secret, *, max_tokens=10):
    return client.post(
        "/v1/chat/completions",
        {"model": "priced", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Hi"}]},
        content_type="application/json",
        **bearer(secret),
    )


def test_spend_is_committed_at_the_real_cost(client, backend, priced, django_capture_on_commit_callbacks):
    key, secret = keys.create(max_budget=Decimal("1"))

    r = chat(client, secret)

    assert r.status_code == 200
    usage = r.json()["usage"]
    expected = PRICE * usage["total_tokens"]
    assert Decimal(r["x-tollgate-cost"]) == expected
    rollup.run()  # with Redis, the key row's spend comes from the ledger
    key.refresh_from_db()
    assert key.spend == expected
    assert key.reserved == 0


def test_a_budget_that_cannot_take_the_worst_case_refuses_with_429(client, backend, priced):
    # The worst case of one call: ~85 body bytes + the mock's 21-byte answer at $1/M ≈ $0.000106; each call
    # really costs ~$0.000007, so three fit under $0.00012 and the fourth could overrun it.
    key, secret = keys.create(max_budget=Decimal("0.00012"))
    statuses = [chat(client, secret).status_code for _ in range(8)]

    assert statuses[0] == 200 and 429 in statuses
    refused = chat(client, secret)
    error = refused.json()["error"]
    assert refused.status_code == 429
    assert (error["type"], error["code"]) == ("budget_exceeded", "budget_exceeded")
    assert "limit $0.000120" in error["message"] and f"key {key.key_name}" in error["message"]
    key.refresh_from_db()
    assert key.spend <= key.max_budget


def test_team_budget_covers_every_key_of_the_team(client, backend, priced):
    team = Team.objects.create(team_id="t", max_budget=Decimal("0.00011"))  # one worst case fits, not two
    _, first = keys.create(team=team)
    _, second = keys.create(team=team)

    assert chat(client, first).status_code == 200
    r = chat(client, second)

    assert r.status_code == 429
    assert "team t" in r.json()["error"]["message"]


def test_member_budget_inside_the_team(client, backend, priced):
    team = Team.objects.create(team_id="t")
    user = InternalUser.objects.create(user_id="u")
    TeamMembership.objects.create(team=team, user=user, max_budget_in_team=Decimal("0.0001"))
    _, secret = keys.create(team=team, user=user)

    r = chat(client, secret)

    assert r.status_code == 429
    assert "member u of team t" in r.json()["error"]["message"]


def not_near_a_minute_boundary() -> None:
    """Rate windows are calendar minutes: keep a few calls inside one."""
    import time

    if time.time() % 60 > 58:
        time.sleep(60 - time.time() % 60 + 0.05)


def test_rpm_limit_answers_429_with_retry_after(client, backend, priced):
    _, secret = keys.create(rpm_limit=2)
    not_near_a_minute_boundary()

    first, second, third = (chat(client, secret) for _ in range(3))

    assert (first.status_code, second.status_code) == (200, 200)
    assert first["x-ratelimit-remaining-requests"] == "1"
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(third["Retry-After"]) <= 61
    assert third["x-ratelimit-remaining-requests"] == "0"


def test_tpm_limit_counts_the_worst_case_tokens(client, backend, priced):
    _, secret = keys.create(tpm_limit=100)

    r = chat(client, secret, max_tokens=500)

    assert r.status_code == 429
    assert "tokens per minute" in r.json()["error"]["message"]


def test_parallel_limit_refuses_a_second_request_in_flight(backend, db):
    key, _ = keys.create(max_parallel_requests=1)
    caller = Caller(kind="key", hint=key.key_name, key=keys.record(key.token))

    first = limits.admit(caller, cost=Decimal(0), tokens=1)
    with pytest.raises(RateLimited):
        limits.admit(caller, cost=Decimal(0), tokens=1)
    settle(first, caller, cost=Decimal(0), tokens=1)
    settle(limits.admit(caller, cost=Decimal(0), tokens=1), caller, cost=Decimal(0), tokens=1)


def test_released_reservations_free_the_budget(backend, db):
    key, _ = keys.create(max_budget=Decimal("1.0"))
    caller = Caller(kind="key", hint=key.key_name, key=keys.record(key.token))

    held = limits.admit(caller, cost=Decimal("0.6"), tokens=1)
    with pytest.raises(BudgetExceeded):
        limits.admit(caller, cost=Decimal("0.6"), tokens=1)
    settle(held, caller, cost=Decimal("0.1"), tokens=1)

    again = limits.admit(caller, cost=Decimal("0.6"), tokens=1)  # 0.1 spent + 0.6 ≤ 1.0
    settle(again, caller, cost=Decimal(0), tokens=0)
    assert VirtualKey.objects.get(pk=key.pk).spend == Decimal("0.1")


def test_unpriced_model_is_refused_only_under_a_budget(client, backend, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="free", model="mistral/some-unknown-model-xyz")
    _, budgeted = keys.create(max_budget=Decimal("1"))
    _, unlimited = keys.create()
    body = {"model": "free", "messages": [{"role": "user", "content": "Hi"}]}

    refused = client.post("/v1/chat/completions", body, content_type="application/json", **bearer(budgeted))
    served = client.post("/v1/chat/completions", body, content_type="application/json", **bearer(unlimited))

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "unpriced_model"
    assert served.status_code == 200
    assert len(fake_mistral.requests) == 1  # the refused call never reached the provider


def test_master_key_is_not_limited(client, backend, priced, auth):
    r = client.post(
        "/v1/chat/completions",
        {"model": "priced", "messages": [{"role": "user", "content": "Hi"}]},
        content_type="application/json",
        **auth,
    )
    assert r.status_code == 200
    assert "x-ratelimit-remaining-requests" not in r


def test_huge_limits_come_back_as_whole_numbers(client, backend, priced):
    _, secret = keys.create(max_budget=Decimal("1000000"), rpm_limit=10**8, tpm_limit=10**15)

    r = chat(client, secret)

    assert r.status_code == 200
    assert int(r["x-ratelimit-remaining-tokens"]) > 10**14


def test_a_soft_budget_only_warns(client, backend, priced, caplog):
    key, secret = keys.create(soft_budget=Decimal("0.000001"))

    with caplog.at_level("WARNING", logger="tenants.limits"):
        first = chat(client, secret)
        second = chat(client, secret)

    assert (first.status_code, second.status_code) == (200, 200)  # never refused
    assert first["x-tollgate-soft-budget-exceeded"] == f"key {key.key_name}"
    assert second["x-tollgate-soft-budget-exceeded"] == f"key {key.key_name}"
    crossings = [r for r in caplog.records if "soft budget reached" in r.getMessage()]
    assert len(crossings) == 1  # logged when crossed, not on every call after


def test_a_fresh_redis_counter_starts_from_spend_not_yet_rolled_up(backend, db):
    if backend != "redis":
        pytest.skip("only Redis counters are seeded from the database")
    key, _ = keys.create(max_budget=Decimal("1.0"))
    caller = Caller(kind="key", hint=key.key_name, key=keys.record(key.token))
    settle(limits.admit(caller, cost=Decimal("0.1"), tokens=1), caller, cost=Decimal("0.1"), tokens=1)
    # Spend settled through Redis but not yet rolled up into the key row: 0.8 on its way.
    ledger.record(
        ledger.Outcome(
            request_id="pending",
            started_at=time.time(),
            endpoint="chat",
            status=200,
            key_hash=key.token,
            key_id=key.pk,
            cost=Decimal("0.8"),
        )
    )
    import redis

    for name in redis.Redis.from_url(REDIS_URL).scan_iter("tg:budget:*"):  # Redis restarted: counters gone
        redis.Redis.from_url(REDIS_URL).delete(name)
    keys.clear_cache()
    caller = Caller(kind="key", hint=key.key_name, key=keys.record(key.token))

    with pytest.raises(BudgetExceeded):  # 0.1 counted + 0.8 pending + 0.2 > 1.0
        limits.admit(caller, cost=Decimal("0.2"), tokens=1)
    limits.admit(caller, cost=Decimal("0.05"), tokens=1)


def test_a_regenerated_key_keeps_the_spend_still_on_its_way(client, backend, priced):
    key, secret = keys.create(max_budget=Decimal("1"))
    r = chat(client, secret)
    assert r.status_code == 200

    keys.regenerate(VirtualKey.objects.get(pk=key.pk))  # a new hash before the rollup ran
    rollup.run()

    key.refresh_from_db()
    assert key.spend == Decimal(r["x-tollgate-cost"]) > 0

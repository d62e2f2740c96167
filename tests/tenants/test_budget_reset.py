"""Budget periods: reset_due() starts new periods on exact UTC boundaries, once per row.

Time is controlled by passing `now`; nothing sleeps.
"""

import os
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections

from billing import rollup
from billing.tasks import reset_budgets
from tenants import keys
from tenants.budgets import reset_due
from tenants.durations import next_reset
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey
from tests.tenants.conftest import bearer

PRICE = Decimal("0.000001")
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
START = datetime(2024, 5, 15, 10, 30, 5, tzinfo=UTC)  # a Wednesday


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def key_with_period(duration: str, *, spend="5", reset_at: datetime | None = None, **fields) -> VirtualKey:
    key, _ = keys.create(budget_duration=duration, **fields)
    reset_at = reset_at or next_reset(duration, START)
    VirtualKey.objects.filter(pk=key.pk).update(spend=Decimal(spend), budget_reset_at=reset_at)
    key.refresh_from_db()
    return key


@pytest.mark.parametrize(
    ("duration", "boundary", "following"),
    [
        ("1d", at(2024, 5, 16), at(2024, 5, 17)),
        ("30s", at(2024, 5, 15, 10, 30, 30), at(2024, 5, 15, 10, 31)),
        ("1h", at(2024, 5, 15, 11), at(2024, 5, 15, 12)),
        ("7d", at(2024, 5, 20), at(2024, 5, 27)),  # Mondays
        ("30d", at(2024, 6, 1), at(2024, 7, 1)),
        ("1mo", at(2024, 6, 1), at(2024, 7, 1)),
    ],
)
def test_resets_exactly_at_the_utc_boundary(db, duration, boundary, following):
    key = key_with_period(duration)
    assert key.budget_reset_at == boundary

    assert reset_due(boundary - timedelta(seconds=1)) == 0
    key.refresh_from_db()
    assert (key.spend, key.budget_reset_at) == (Decimal(5), boundary)

    assert reset_due(boundary) == 1
    key.refresh_from_db()
    assert (key.spend, key.budget_reset_at) == (Decimal(0), following)


def test_a_missed_boundary_moves_to_the_period_running_now(db):
    key = key_with_period("1d", reset_at=at(2024, 5, 1))

    assert reset_due(at(2024, 5, 15, 12)) == 1
    key.refresh_from_db()
    assert key.budget_reset_at == at(2024, 5, 16)


def test_users_teams_and_memberships_are_reset_too(db):
    due = at(2024, 5, 16)
    user = InternalUser.objects.create(user_id="u", budget_duration="1d", budget_reset_at=due, spend=3)
    team = Team.objects.create(team_id="t", budget_duration="1d", budget_reset_at=due, spend=4)
    member = TeamMembership.objects.create(team=team, user=user, budget_duration="1d", budget_reset_at=due, spend=2)

    assert reset_due(due) == 3
    for row in (user, team, member):
        row.refresh_from_db()
        assert (row.spend, row.budget_reset_at) == (Decimal(0), at(2024, 5, 17))


def test_reserved_is_left_for_requests_in_flight(db):
    key = key_with_period("1d")
    VirtualKey.objects.filter(pk=key.pk).update(reserved=Decimal("0.5"))

    reset_due(at(2024, 5, 16))

    key.refresh_from_db()
    assert (key.spend, key.reserved) == (Decimal(0), Decimal("0.5"))


def test_rows_without_a_period_or_without_a_reset_time(db):
    plain, _ = keys.create()
    VirtualKey.objects.filter(pk=plain.pk).update(spend=7)
    unscheduled, _ = keys.create(budget_duration="1d")
    VirtualKey.objects.filter(pk=unscheduled.pk).update(spend=7)

    assert reset_due(START) == 0

    plain.refresh_from_db()
    unscheduled.refresh_from_db()
    assert (plain.spend, plain.budget_reset_at) == (Decimal(7), None)
    assert (unscheduled.spend, unscheduled.budget_reset_at) == (Decimal(7), at(2024, 5, 16))


def test_running_twice_resets_once(db):
    key = key_with_period("1h")
    boundary = key.budget_reset_at

    assert reset_due(boundary) == 1
    VirtualKey.objects.filter(pk=key.pk).update(spend=1)  # spent in the new period
    assert reset_due(boundary) == 0
    assert reset_due(boundary + timedelta(minutes=59)) == 0

    key.refresh_from_db()
    assert key.spend == Decimal(1)


def test_generation_moves_only_when_something_changed(db, django_capture_on_commit_callbacks):
    key_with_period("1d")
    with django_capture_on_commit_callbacks() as callbacks:
        reset_due(at(2024, 5, 15, 23))
    assert callbacks == []
    with django_capture_on_commit_callbacks() as callbacks:
        reset_due(at(2024, 5, 16))
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_reset_each_row_once():
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite serialises every writer, so two threads cannot race here; run with a PostgreSQL DATABASE_URL"
        )
    boundary = at(2024, 5, 16)
    rows = [key_with_period("1d").pk for _ in range(40)]
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(reset_due(boundary))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(results) == len(rows)
    assert set(VirtualKey.objects.filter(pk__in=rows).values_list("spend", "budget_reset_at")) == {
        (Decimal(0), at(2024, 5, 17))
    }


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    settings.TOLLGATE_AUTH_CACHE_SECONDS = 0
    settings.TOLLGATE_DEPLOYMENT_CACHE_SECONDS = 0
    if request.param == "redis":
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.3).ping()
        except Exception:
            pytest.skip(f"Redis not reachable at {REDIS_URL}: the Redis admission path is not tested")
        from tenants import redis_limits

        settings.REDIS_URL = REDIS_URL
        redis_limits._client = None
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.scan_iter("tg:*"):
            client.delete(name)
    else:
        settings.REDIS_URL = ""
    return request.param


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


def chat(client, secret):
    return client.post(
        "/v1/chat/completions",
        {"model": "priced", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]},
        content_type="application/json",
        **bearer(secret),
    )


def test_a_spent_key_is_admitted_again_after_the_reset(client, backend, priced, django_capture_on_commit_callbacks):
    key, secret = keys.create(max_budget=Decimal("0.01"), budget_duration="1d")
    past = datetime.now(UTC) - timedelta(minutes=1)
    VirtualKey.objects.filter(pk=key.pk).update(spend=Decimal("0.01"), budget_reset_at=past)

    refused = chat(client, secret)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"

    with django_capture_on_commit_callbacks(execute=True):
        assert reset_due() == 1

    assert chat(client, secret).status_code == 200
    rollup.run()  # with Redis, the key row's spend comes from the ledger
    key.refresh_from_db()
    assert Decimal(0) < key.spend < Decimal("0.01")
    assert key.budget_reset_at > past


def test_the_celery_task_runs_eagerly(db, settings):
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the app read its settings at import
    try:
        key_with_period("30s", reset_at=datetime.now(UTC) - timedelta(seconds=1))
        assert reset_budgets.delay().get(timeout=10) == 1
    finally:
        app.conf.task_always_eager = eager


def test_the_task_is_on_the_beat_schedule():
    from config.celery import app

    entry = app.conf.beat_schedule["reset-budgets"]
    assert entry["task"] == reset_budgets.name == "billing.tasks.reset_budgets"
    assert entry["schedule"] == 10.0

"""The rollup (billing/rollup.py) on the ORM: usage rows counted into spend and the daily table once.

Rows are made with the ORM (or ledger.record, as the hot path writes them); `rollup.run` is called
directly. Costs are multiples of 1/1024 so that SQLite, which adds decimals as floats, sums them exactly.
"""

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.utils import timezone

from billing import ledger, rollup
from billing.models import Counted, DailyUsage, UsageRecord
from tenants import keys
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

pytestmark = pytest.mark.django_db

UNIT = Decimal(1) / 1024  # exact in binary: float sums on SQLite stay exact


def row(*, cost: Decimal | int = 0, ended_at: datetime | None = None, save: bool = True, **fields) -> UsageRecord:
    """A usage row as the hot path writes it (not rolled up, counted on nothing unless told)."""
    ended = ended_at or timezone.now()
    values = {
        "request_id": uuid.uuid4().hex,
        "started_at": ended - timedelta(seconds=1),
        "ended_at": ended,
        "endpoint": "chat",
        "status": 200,
        "model": "small",
        "provider": "mistral",
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        **fields,
    }
    record = UsageRecord(cost=Decimal(cost), **values)
    if save:
        record.save()
    return record


@pytest.fixture
def world(db) -> SimpleNamespace:
    """Team A with alice as a member and her key; team B with a key of its own."""
    team = Team.objects.create(team_id="team-a")
    alice = InternalUser.objects.create(user_id="alice")
    member = TeamMembership.objects.create(team=team, user=alice)
    key, _ = keys.create(team=team, user=alice)
    other_team = Team.objects.create(team_id="team-b")
    other_key, _ = keys.create(team=other_team)
    return SimpleNamespace(team=team, alice=alice, member=member, key=key, other_team=other_team, other_key=other_key)


def alices(**fields) -> dict:
    key = fields.pop("key")
    return {"key_hash": key.token, "key_id": key.pk, "team_id": "team-a", "user_id": "alice", **fields}


def spends(world) -> dict[str, Decimal]:
    """The spend on every tenant row of the world, read again."""
    return {
        "key": VirtualKey.objects.get(pk=world.key.pk).spend,
        "user": InternalUser.objects.get(pk=world.alice.pk).spend,
        "team": Team.objects.get(pk=world.team.pk).spend,
        "member": TeamMembership.objects.get(pk=world.member.pk).spend,
        "other_key": VirtualKey.objects.get(pk=world.other_key.pk).spend,
        "other_team": Team.objects.get(pk=world.other_team.pk).spend,
    }


def daily_totals() -> dict[str, Decimal | int]:
    """The daily table summed over every dimension (in Python: exact on every database)."""
    rows = list(DailyUsage.objects.values("requests", "errors", "total_tokens", "spend"))
    return {
        "requests": sum(r["requests"] for r in rows),
        "errors": sum(r["errors"] for r in rows),
        "tokens": sum(r["total_tokens"] for r in rows),
        "spend": sum((r["spend"] for r in rows), Decimal(0)),
    }


def ledger_totals() -> dict[str, Decimal | int]:
    """What the daily table must add up to: the usage rows themselves."""
    rows = list(UsageRecord.objects.values("status", "total_tokens", "cost"))
    return {
        "requests": len(rows),
        "errors": sum(r["status"] >= 400 for r in rows),
        "tokens": sum(r["total_tokens"] for r in rows),
        "spend": sum((r["cost"] for r in rows), Decimal(0)),
    }


# --- spend on tenant rows: only where the hot path did not already add it -------------------------


def test_spend_is_added_only_to_the_scopes_a_row_was_not_counted_on(world):
    row(cost=1 * UNIT, **alices(key=world.key))  # the Redis path: counted nowhere yet
    row(cost=2 * UNIT, counted_on=Counted.KEY | Counted.TEAM, **alices(key=world.key))
    row(cost=4 * UNIT, counted_on=Counted.ALL, **alices(key=world.key))  # the database path: counted everywhere
    row(cost=8 * UNIT, key_hash=world.other_key.token, key_id=world.other_key.pk, team_id="team-b")

    assert rollup.run() == 4

    assert spends(world) == {
        "key": 1 * UNIT,
        "user": 3 * UNIT,
        "team": 1 * UNIT,
        "member": 3 * UNIT,
        "other_key": 8 * UNIT,
        "other_team": 8 * UNIT,
    }
    assert set(UsageRecord.objects.values_list("rolled_up", "counted_on")) == {(True, Counted.ALL)}


def test_the_counted_flags_are_those_settling_charged(world):
    outcome = ledger.Outcome(
        request_id="r1", started_at=timezone.now().timestamp(), endpoint="chat", status=200, cost=4 * UNIT
    )
    outcome.key_hash, outcome.team_id, outcome.user_id = world.key.token, "team-a", "alice"
    outcome.key_id = world.key.pk

    ledger.record(outcome, ("key", "member"))
    assert UsageRecord.objects.get().counted_on == Counted.KEY | Counted.MEMBER
    rollup.run()

    assert spends(world) | {"other_key": 0, "other_team": 0} == {
        "key": 0,
        "user": 4 * UNIT,
        "team": 4 * UNIT,
        "member": 0,
        "other_key": 0,
        "other_team": 0,
    }


def test_a_key_without_a_team_or_user_touches_no_membership(world):
    solo, _ = keys.create(user=world.alice)
    row(cost=UNIT, key_hash=solo.token, key_id=solo.pk, user_id="alice")

    rollup.run()

    solo.refresh_from_db()
    assert solo.spend == UNIT
    assert spends(world)["user"] == UNIT
    assert spends(world)["member"] == spends(world)["team"] == 0


def test_a_row_whose_tenants_are_gone_still_reaches_the_daily_table(world):
    row(cost=UNIT, key_hash="0" * 64, team_id="deleted-team", user_id="deleted-user")

    assert rollup.run() == 1

    assert daily_totals()["spend"] == UNIT
    assert set(spends(world).values()) == {0}


# --- the daily table --------------------------------------------------------------------------------


def test_daily_usage_has_requests_errors_tokens_and_spend_per_dimension(world):
    now = datetime(2024, 5, 16, 12, tzinfo=UTC)
    mine = alices(key=world.key, ended_at=now)
    row(cost=UNIT, **mine, end_user="ada")
    row(cost=2 * UNIT, **mine, end_user="ada", prompt_tokens=10, completion_tokens=5, total_tokens=15)
    row(status=429, prompt_tokens=0, completion_tokens=0, total_tokens=0, **mine, end_user="ada")
    row(cost=4 * UNIT, **mine, model="large")
    row(status=502, **mine, model="large", provider="bedrock", prompt_tokens=0, completion_tokens=0, total_tokens=0)
    row(
        status=499, cost=UNIT, key_hash=world.other_key.token, key_id=world.other_key.pk, team_id="team-b", ended_at=now
    )

    rollup.run()

    figures = {
        (d.team_id, d.key_hash == world.key.token, d.user_id, d.end_user, d.model, d.provider): (
            d.requests,
            d.errors,
            d.prompt_tokens,
            d.completion_tokens,
            d.total_tokens,
            d.spend,
        )
        for d in DailyUsage.objects.all()
    }
    assert figures == {
        ("team-a", True, "alice", "ada", "small", "mistral"): (3, 1, 13, 7, 20, 3 * UNIT),
        ("team-a", True, "alice", "", "large", "mistral"): (1, 0, 3, 2, 5, 4 * UNIT),
        ("team-a", True, "alice", "", "large", "bedrock"): (1, 1, 0, 0, 0, 0),
        ("team-b", False, "", "", "small", "mistral"): (1, 1, 3, 2, 5, UNIT),
    }
    assert set(DailyUsage.objects.values_list("day", flat=True)) == {date(2024, 5, 16)}


def test_days_are_utc_days_of_the_end_time(world, settings):
    settings.TIME_ZONE = "America/New_York"  # the server's zone plays no part
    row(cost=UNIT, ended_at=datetime(2024, 5, 16, 23, 59, 59, tzinfo=UTC))
    row(cost=2 * UNIT, ended_at=datetime(2024, 5, 17, 0, 0, 1, tzinfo=UTC))
    row(
        cost=4 * UNIT,
        started_at=datetime(2024, 5, 16, 23, 59, 0, tzinfo=UTC),
        ended_at=datetime(2024, 5, 17, 1, tzinfo=UTC),
    )

    rollup.run()

    by_day = dict(DailyUsage.objects.values_list("day", "spend"))
    assert by_day == {date(2024, 5, 16): UNIT, date(2024, 5, 17): 6 * UNIT}


# --- exactly once -----------------------------------------------------------------------------------


def test_running_twice_counts_once(world):
    for cost in range(1, 6):
        row(cost=cost * UNIT, **alices(key=world.key))

    assert rollup.run() == 5
    first = (spends(world), daily_totals())
    assert rollup.run() == 0

    assert (spends(world), daily_totals()) == first
    assert first[0]["key"] == 15 * UNIT
    assert daily_totals() == ledger_totals()
    assert not UsageRecord.objects.filter(rolled_up=False).exists()


def test_a_row_written_after_a_run_is_added_once(world):
    row(cost=UNIT, **alices(key=world.key))
    rollup.run()

    row(cost=2 * UNIT, **alices(key=world.key))
    assert rollup.run() == 1
    assert rollup.run() == 0

    assert spends(world)["key"] == 3 * UNIT
    assert DailyUsage.objects.get().requests == 2
    assert daily_totals() == ledger_totals()


def test_batches_smaller_than_the_queue_count_every_row_once(world):
    UsageRecord.objects.bulk_create(
        [
            row(cost=(i % 5) * UNIT, status=500 if i % 7 == 0 else 200, save=False, **alices(key=world.key))
            for i in range(53)
        ]
    )

    assert rollup.run(batch_size=7, max_batches=3) == 21  # a run stops after max_batches; the next one goes on
    assert UsageRecord.objects.filter(rolled_up=False).count() == 32
    assert rollup.run(batch_size=7) == 32

    assert daily_totals() == ledger_totals()
    assert spends(world)["key"] == ledger_totals()["spend"]


def test_the_default_batch_size_is_the_setting(world, settings):
    settings.TOLLGATE_ROLLUP_BATCH = 2
    for _ in range(5):
        row(cost=UNIT, **alices(key=world.key))

    assert rollup.run(max_batches=2) == 4


@pytest.mark.django_db(transaction=True)  # each thread has its own connection: rows must be committed
def test_concurrent_runs_count_every_row_exactly_once(world):
    rows = [
        row(
            cost=(i % 7) * UNIT,
            status=429 if i % 11 == 0 else 200,
            end_user=f"u{i % 3}",
            save=False,
            **(
                alices(key=world.key)
                if i % 2
                else {"key_hash": world.other_key.token, "key_id": world.other_key.pk, "team_id": "team-b"}
            ),
        )
        for i in range(3000)
    ]
    UsageRecord.objects.bulk_create(rows, batch_size=1000)
    barrier = threading.Barrier(4)
    counted: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            counted.append(rollup.run(batch_size=100))
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(counted) == 3000
    if connection.vendor == "postgresql":  # SKIP LOCKED: the runs overlap (SQLite's take turns: write_lock)
        assert len([c for c in counted if c]) > 1, counted
    assert daily_totals() == ledger_totals()
    expected = {
        "key": sum((r.cost for r in rows if r.team_id == "team-a"), Decimal(0)),
        "other_key": sum((r.cost for r in rows if r.team_id == "team-b"), Decimal(0)),
    }
    got = spends(world)
    assert (got["key"], got["user"], got["team"], got["member"]) == (expected["key"],) * 4
    assert (got["other_key"], got["other_team"]) == (expected["other_key"],) * 2


def test_a_run_killed_mid_batch_counts_nothing_of_that_batch_and_a_rerun_is_exact(world, monkeypatch):
    for i in range(30):
        row(cost=(i % 4 + 1) * UNIT, **alices(key=world.key))
    real_add_daily = rollup.add_daily
    batches: list[int] = []

    def dies_in_the_second_batch(rows):
        batches.append(len(rows))
        if len(batches) == 2:  # add_spend of this batch has run: its updates must roll back too
            raise SystemExit("killed")
        real_add_daily(rows)

    monkeypatch.setattr(rollup, "add_daily", dies_in_the_second_batch)
    with pytest.raises(SystemExit):
        rollup.run(batch_size=10)

    first_ten = sum((r.cost for r in UsageRecord.objects.order_by("id")[:10]), Decimal(0))
    assert UsageRecord.objects.filter(rolled_up=True).count() == 10
    assert spends(world)["key"] == spends(world)["team"] == first_ten
    assert daily_totals()["requests"] == 10 and daily_totals()["spend"] == first_ten

    monkeypatch.setattr(rollup, "add_daily", real_add_daily)
    assert rollup.run(batch_size=10) == 20

    assert daily_totals() == ledger_totals()
    assert set(spends(world).values()) - {0} == {ledger_totals()["spend"]}


# --- retention --------------------------------------------------------------------------------------


def test_purge_deletes_only_rolled_up_rows_older_than_the_cutoff(world):
    now = timezone.now()
    old_counted = row(cost=UNIT, ended_at=now - timedelta(days=31))
    recent_counted = row(cost=UNIT, ended_at=now - timedelta(days=29))
    rollup.run()
    old_pending = row(cost=UNIT, ended_at=now - timedelta(days=40))

    assert rollup.purge(30) == 1

    assert set(UsageRecord.objects.values_list("pk", flat=True)) == {recent_counted.pk, old_pending.pk}
    assert not UsageRecord.objects.filter(pk=old_counted.pk).exists()
    assert daily_totals()["requests"] == 2  # the figures stay; only the detail goes
    rollup.run()
    assert rollup.purge(30) == 1  # counted now, so it goes too
    assert list(UsageRecord.objects.values_list("pk", flat=True)) == [recent_counted.pk]


def test_purge_zero_keeps_everything_and_none_reads_the_setting(world, settings):
    now = timezone.now()
    for age in (400, 100, 10):
        row(ended_at=now - timedelta(days=age))
    rollup.run()

    assert rollup.purge(0) == 0
    assert UsageRecord.objects.count() == 3
    settings.TOLLGATE_USAGE_RETENTION_DAYS = 0
    assert rollup.purge() == 0
    settings.TOLLGATE_USAGE_RETENTION_DAYS = 90
    assert rollup.purge() == 2
    assert UsageRecord.objects.count() == 1


def test_purge_works_in_batches(world):
    old = timezone.now() - timedelta(days=100)
    UsageRecord.objects.bulk_create([row(ended_at=old, save=False) for _ in range(25)])
    rollup.run()

    assert rollup.purge(30, batch_size=10) == 25
    assert not UsageRecord.objects.exists()


# --- budget resets ----------------------------------------------------------------------------------


def test_a_budget_reset_counts_pending_spend_into_the_old_period_first(world):
    from billing.tasks import reset_budgets

    boundary = timezone.now() - timedelta(seconds=5)
    VirtualKey.objects.filter(pk=world.key.pk).update(
        max_budget=Decimal(1), budget_duration="1d", budget_reset_at=boundary
    )
    row(cost=4 * UNIT, ended_at=boundary - timedelta(seconds=5), **alices(key=world.key))

    assert reset_budgets() == 1

    key = VirtualKey.objects.get(pk=world.key.pk)
    assert key.spend == 0  # counted, then zeroed: not spilled into the new period
    assert key.budget_reset_at > boundary
    assert UsageRecord.objects.get().rolled_up
    assert spends(world)["team"] == 4 * UNIT  # no period on the team: its spend keeps the row
    assert daily_totals()["spend"] == 4 * UNIT

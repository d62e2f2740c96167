"""The staff dashboard: who may see it, what it shows, and what it reads to show it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.dashboard import budgets, stats
from billing.models import DailyUsage, UsageRecord
from tenants import keys
from tenants.models import Team

pytestmark = pytest.mark.django_db


def usage(*, team: Team | None = None, key=None, ago=dt.timedelta(minutes=5), **fields) -> UsageRecord:
    """A ledger row, as if a request ended `ago`."""
    ended = timezone.now() - ago
    fields.setdefault("status", 200)
    fields.setdefault("model", "small")
    return UsageRecord.objects.create(
        request_id=f"req-{UsageRecord.objects.count()}",
        started_at=ended - dt.timedelta(milliseconds=fields.get("latency_ms", 100)),
        ended_at=ended,
        endpoint="chat",
        team_id=team.team_id if team else "",
        key_hash=key.token if key else "",
        key_name=key.key_name if key else "",
        **fields,
    )


def day(*, team: Team | None = None, key=None, days_ago: int = 0, **fields) -> DailyUsage:
    return DailyUsage.objects.create(
        day=timezone.now().date() - dt.timedelta(days=days_ago),
        team_id=team.team_id if team else "",
        key_hash=key.token if key else "",
        **fields,
    )


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(user)
    return user


@pytest.fixture
def team(db) -> Team:
    return Team.objects.create(team_id="team-a", team_alias="Search")


@pytest.fixture
def other_team(db) -> Team:
    return Team.objects.create(team_id="team-b", team_alias="Billing")


@pytest.fixture
def key(team):
    return keys.create(team=team, key_alias="search-prod")[0]


@pytest.fixture
def other_key(other_team):
    return keys.create(team=other_team, key_alias="billing-prod")[0]


# --- who may see it --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/teams/team-a/", "/dashboard/keys/1/"])
def test_anonymous_is_sent_to_the_admin_login(client, path):
    r = client.get(path)
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/?next=")


def test_a_logged_in_user_who_is_not_staff_is_sent_to_the_admin_login(client, team):
    client.force_login(get_user_model().objects.create_user("member", password="pw"))
    for path in ("/dashboard/", f"/dashboard/teams/{team.team_id}/"):
        r = client.get(path)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/")


def test_unknown_team_or_key_is_a_404_page(client, staff):
    assert client.get("/dashboard/teams/nope/").status_code == 404
    r = client.get("/dashboard/keys/999/")
    assert r.status_code == 404 and b"No such key" in r.content


# --- what it shows ---------------------------------------------------------------------------


def test_overview_shows_spend_by_team_model_and_key_without_digests(client, staff, team, other_team, key, other_key):
    day(team=team, key=key, model="small", requests=3, errors=1, spend=Decimal("1.50"))
    day(team=other_team, key=other_key, model="large", requests=1, spend=Decimal("4"), days_ago=2)
    usage(team=team, key=key, cost=Decimal("0.5"))

    r = client.get("/dashboard/?range=7d")
    page = r.content.decode()

    assert r.status_code == 200
    assert r.context["totals"] == {"spend": Decimal("5.50"), "requests": 4, "errors": 1, "error_rate": 0.25}
    assert "Search" in page and "Billing" in page and "search-prod" in page and "large" in page
    assert page.count("<svg") >= 6  # two time charts and one bar chart per breakdown
    assert key.token not in page and other_key.token not in page
    assert f"/dashboard/teams/{team.team_id}/" in page and f"/dashboard/keys/{key.pk}/" in page


def test_team_page_shows_only_that_team(client, staff, team, other_team, key, other_key):
    day(team=team, key=key, requests=2, spend=Decimal("1"))
    day(team=other_team, key=other_key, requests=9, spend=Decimal("9"))
    usage(team=team, key=key)
    usage(team=other_team, key=other_key, model="secret-model")

    r = client.get(f"/dashboard/teams/{team.team_id}/")
    page = r.content.decode()

    assert r.context["totals"]["requests"] == 2
    assert [rec.team_id for rec in r.context["page"].object_list] == [team.team_id]
    assert "billing-prod" not in page and "secret-model" not in page


def test_key_page_shows_only_that_key(client, staff, team, key):
    other = keys.create(team=team, key_alias="search-dev")[0]
    usage(team=team, key=key, model="small")
    usage(team=team, key=other, model="large")

    r = client.get(f"/dashboard/keys/{key.pk}/")

    assert [rec.model for rec in r.context["page"].object_list] == ["small"]
    assert "search-dev" not in r.content.decode()


def test_the_last_24_hours_are_drawn_by_the_hour_from_the_ledger(client, staff, team):
    usage(team=team, ago=dt.timedelta(hours=2), cost=Decimal("0.25"))
    usage(team=team, ago=dt.timedelta(hours=2), status=500)
    usage(team=team, ago=dt.timedelta(hours=30), cost=Decimal("9"))  # outside the window

    r = client.get("/dashboard/?range=24h")

    assert r.context["window"].hourly
    assert r.context["totals"] == {"spend": Decimal("0.25"), "requests": 2, "errors": 1, "error_rate": 0.5}
    assert len(r.context["page"].object_list) == 2


def test_an_unknown_range_is_the_default_one(client, staff):
    assert client.get("/dashboard/?range=forever").context["window"].name == stats.DEFAULT_RANGE


def test_latency_percentiles_leave_out_failed_requests(team):
    for latency in range(1, 101):  # 1..100 ms
        usage(team=team, latency_ms=latency)
    usage(team=team, latency_ms=0.5, status=429)

    found = stats.latency(stats.window("24h"), stats.Scope(team_id=team.team_id))

    assert found == {"count": 100, "sampled": False, "p50": 50, "p95": 95}


def test_latency_is_read_from_the_newest_requests_only(team):
    for n in range(10):  # older and slow, then newer and fast
        usage(team=team, latency_ms=1000 + n, ago=dt.timedelta(minutes=60 - n))
    for n in range(4):
        usage(team=team, latency_ms=10 + n, ago=dt.timedelta(minutes=5 - n))

    found = stats.latency(stats.window("24h"), stats.Scope(team_id=team.team_id), sample=4)

    assert found == {"count": 4, "sampled": True, "p50": 11, "p95": 13}


def test_the_table_reaches_back_a_bounded_number_of_requests(client, staff, team, monkeypatch):
    monkeypatch.setattr(stats, "TABLE_ROWS", 30)
    for _ in range(40):
        usage(team=team)

    r = client.get("/dashboard/?range=24h&page=2")

    assert r.context["page"].paginator.count == 30 and len(r.context["page"].object_list) == 5
    assert "the latest 30 requests" in r.content.decode()


def test_usage_table_is_paginated(client, staff, team):
    for _ in range(30):
        usage(team=team)
    first = client.get("/dashboard/?range=24h")
    second = client.get("/dashboard/?range=24h&page=2")

    assert len(first.context["page"].object_list) == 25 and len(second.context["page"].object_list) == 5
    assert "Older →" in first.content.decode()


def test_overview_reads_a_bounded_number_of_queries(
    client, staff, team, other_team, key, other_key, django_assert_max_num_queries
):
    for n in range(20):
        day(
            team=team if n % 2 else other_team,
            key=key if n % 2 else other_key,
            model=f"m{n}",
            requests=1,
            spend=Decimal(1),
        )
        usage(team=team, key=key)
    with django_assert_max_num_queries(25):
        assert client.get("/dashboard/").status_code == 200


# --- budgets near their limit ----------------------------------------------------------------


def test_a_budget_mostly_used_is_listed_with_its_burn_rate_and_exhaustion_date(team, other_team, key):
    Team.objects.filter(pk=team.pk).update(max_budget=Decimal(100), spend=Decimal(90))
    Team.objects.filter(pk=other_team.pk).update(max_budget=Decimal(100), spend=Decimal(10))  # far from it
    for n in range(7):
        day(team=team, key=key, days_ago=n, spend=Decimal(2))  # 2 USD a day

    found = budgets.near_limit()

    assert [(row.kind, row.label) for row in found] == [("team", "Search")]
    row = found[0]
    assert row.burn_per_day == Decimal(2) and row.left == Decimal(10)
    assert row.exhausted_on == timezone.now().date() + dt.timedelta(days=5)


def test_a_fast_burn_lists_a_budget_before_it_is_mostly_used(team, key):
    VirtualKeyModel = type(key)
    VirtualKeyModel.objects.filter(pk=key.pk).update(max_budget=Decimal(10), spend=Decimal(5))
    day(team=team, key=key, spend=Decimal(14))  # 2 USD a day over the week: 5 left lasts 2 days

    found = budgets.near_limit()

    assert [(row.kind, row.pk) for row in found] == [("key", key.pk)]
    assert found[0].exhausted_on == timezone.now().date() + dt.timedelta(days=2)


def test_a_budget_that_resets_before_running_out_is_not_urgent(team, key):
    Team.objects.filter(pk=team.pk).update(
        max_budget=Decimal(100), spend=Decimal(50), budget_reset_at=timezone.now() + dt.timedelta(days=1)
    )
    day(team=team, key=key, spend=Decimal(70))  # 10 a day: 5 days left, but the period resets tomorrow

    assert budgets.near_limit() == []


def test_overview_lists_budgets_near_their_limit(client, staff, team):
    Team.objects.filter(pk=team.pk).update(max_budget=Decimal(10), spend=Decimal("9.5"))

    page = client.get("/dashboard/").content.decode()

    assert "Budgets near their limit" in page and "$9.50 / $10.00" in page

"""Usage in the admin: filters by team, key, model, status and dates; CSV of what the filters select."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from billing.models import DailyUsage, ModelPrice, UsageRecord
from tenants.models import AuditEntry, Team

pytestmark = pytest.mark.django_db

USAGE = "/admin/billing/usagerecord/"
DIGEST = "d" * 64


def usage(request_id: str, *, day: int = 1, team: str = "team-a", key: str = "sk-...aaaa", model="small", status=200):
    ended = dt.datetime(2025, 3, day, 12, tzinfo=dt.UTC)
    return UsageRecord.objects.create(
        request_id=request_id,
        started_at=ended - dt.timedelta(seconds=1),
        ended_at=ended,
        endpoint="chat",
        key_hash=DIGEST,
        key_name=key,
        team_id=team,
        model=model,
        provider="mistral",
        total_tokens=7,
        cost=Decimal("0.0012"),
        status=status,
    )


@pytest.fixture
def rows(db):
    Team.objects.create(team_id="team-a", team_alias="Team A")
    Team.objects.create(team_id="team-b", team_alias="Team B")
    usage("r-a1", day=1)
    usage("r-a2", day=2, model="big", status=429)
    usage("r-b1", day=3, team="team-b", key="sk-...bbbb", status=502)


def listed(admin_client, **query) -> set[str]:
    html = admin_client.get(USAGE, query).content.decode()
    return {rid for rid in ("r-a1", "r-a2", "r-b1") if rid in html}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"r-a1", "r-a2", "r-b1"}),
        ({"team_id": "team-b"}, {"r-b1"}),
        ({"key_name": "sk-...aaaa"}, {"r-a1", "r-a2"}),
        ({"model": "big"}, {"r-a2"}),
        ({"status_class": "client"}, {"r-a2"}),
        ({"status_class": "upstream"}, {"r-b1"}),
        ({"from": "2025-03-02"}, {"r-a2", "r-b1"}),
        ({"from": "2025-03-01", "to": "2025-03-02"}, {"r-a1", "r-a2"}),
        ({"team_id": "team-a", "status_class": "ok"}, {"r-a1"}),
    ],
)
def test_usage_filters(admin_client, rows, query, expected):
    assert listed(admin_client, **query) == expected


def test_a_bad_date_does_not_fail_the_page(admin_client, rows):
    assert admin_client.get(USAGE, {"from": "yesterday"}).status_code in (200, 302)


def read_csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_button_streams_the_filtered_rows_without_digests(admin_client, rows):
    r = admin_client.get(f"{USAGE}export.csv", {"team_id": "team-a", "status_class": "ok"})

    [row] = read_csv(r)
    assert (row["request_id"], row["key_name"], row["team_id"], row["cost"], row["status"]) == (
        "r-a1",
        "sk-...aaaa",
        "team-a",
        "0.0012",
        "200",
    )
    assert "key_hash" not in row and DIGEST not in str(row)
    assert 'href="/admin/billing/usagerecord/export.csv?team_id=team-a' in admin_client.get(
        USAGE, {"team_id": "team-a"}
    ).content.decode().replace("&amp;", "&")


def test_export_action_streams_the_selected_rows(admin_client, rows):
    chosen = UsageRecord.objects.filter(request_id__in=["r-a2", "r-b1"])

    r = admin_client.post(USAGE, {"action": "export_csv", "_selected_action": [u.pk for u in chosen]})

    assert sorted(row["request_id"] for row in read_csv(r)) == ["r-a2", "r-b1"]


def test_daily_table_filters_and_exports(admin_client, rows):
    DailyUsage.objects.create(day=dt.date(2025, 3, 1), team_id="team-a", model="small", requests=2, spend=1)
    DailyUsage.objects.create(day=dt.date(2025, 3, 9), team_id="team-b", model="small", requests=5, spend=2)

    r = admin_client.get("/admin/billing/dailyusage/export.csv", {"from": "2025-03-05"})

    [row] = read_csv(r)
    assert (row["day"], row["team_id"], row["requests"], row["spend"]) == ("2025-03-09", "team-b", "5", "2")


def test_usage_stays_read_only(admin_client, rows):
    row = UsageRecord.objects.first()

    assert admin_client.post(f"{USAGE}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert UsageRecord.objects.count() == 3


def test_price_changes_are_audited(admin_client):
    r = admin_client.post(
        "/admin/billing/modelprice/add/",
        {
            "price_list": "mistral",
            "model": "audited-model",
            "input_cost_per_token": "0.000001",
            "output_cost_per_token": "0.000003",
            "max_output_tokens": "",
            "effective_from_0": "2025-01-01",
            "effective_from_1": "00:00:00",
            "note": "",
        },
    )

    assert r.status_code == 302, r.content.decode()
    price = ModelPrice.objects.get(model="audited-model")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.object_id) == ("create", "modelprice", str(price.pk))
    assert entry.after["input_cost_per_token"] == "0.000001"

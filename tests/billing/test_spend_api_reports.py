"""GET /global/spend/report and /user/daily/activity: LiteLLM's report shapes from the daily
billing table, by date range, grouped, paged, exported, and isolated per tenant.

DailyUsage rows are made with the ORM (the rollup that fills them is tested on its own).
"""

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import DailyUsage
from tests.billing import test_spend_api as spend
from tests.tenants.conftest import error_of

pytestmark = pytest.mark.django_db

# The shared world (tests/billing/test_spend_api.py) and the tenants fixtures it needs.
api = spend.api
make_key = spend.make_key
make_user = spend.make_user
team = spend.team
other_team = spend.other_team
world = spend.world
RANGE = {"start_date": "2025-03-01", "end_date": "2025-03-03"}


@pytest.fixture
def days(world) -> spend.World:
    """Daily rows over 1 to 3 March 2025 (and one on 4 March, outside RANGE)."""

    def add(day: int, key: str, team_id: str, user_id: str, spend_: str, **fields) -> None:
        fields.setdefault("model", "small")
        fields.setdefault("provider", "mistral")
        requests = fields.pop("requests", 2)
        DailyUsage.objects.create(
            day=dt.date(2025, 3, day),
            key_hash=world.digest.get(key, ""),
            team_id=team_id,
            user_id=user_id,
            requests=requests,
            errors=fields.pop("errors", 0),
            prompt_tokens=100,
            completion_tokens=50,
            total_tokens=150,
            spend=Decimal(spend_),
            **fields,
        )

    add(1, "bob", "team-a", "bob", "1.0", end_user="cust-1")
    add(1, "alice", "team-a", "alice", "2.0", model="large", provider="mistral")
    add(2, "bob", "team-a", "bob", "0.5", end_user="cust-1", errors=1)
    add(2, "carol", "team-b", "carol", "4.0", end_user="cust-2")
    add(3, "bob_own", "", "bob", "0.25", model="gpt", provider="openai")
    add(3, "master", "", "", "0.125")
    add(4, "bob", "team-a", "bob", "8.0")
    return world


def report(api, headers, **query):
    return api.get("/global/spend/report", headers, **{**RANGE, **query})


def activity(api, headers, **query):
    return api.get("/user/daily/activity", headers, **{**RANGE, **query})


def ok(response):
    assert response.status_code == 200, response.content
    return response.json()


def read_csv(response) -> list[dict[str, str]]:
    return spend.read_csv(response)


# --- /global/spend/report -------------------------------------------------------------------


def test_report_by_team_is_litellms_per_day_shape(api, auth, days):
    body = ok(report(api, auth))

    assert [d["group_by_day"] for d in body] == ["2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z", "2025-03-03T00:00:00Z"]
    first = body[0]["teams"]
    assert [t["team_name"] for t in first] == ["Team A"]
    assert first[0]["team_id"] == "team-a"
    assert first[0]["total_spend"] == pytest.approx(3.0)
    assert [(m["model"], m["api_key"], m["spend"]) for m in first[0]["metadata"]] == [
        ("large", days.digest["alice"], 2.0),
        ("small", days.digest["bob"], 1.0),
    ]
    assert first[0]["metadata"][0]["total_tokens"] == 150
    assert [t["team_name"] for t in body[1]["teams"]] == ["Team B", "Team A"]  # dearest first
    assert [t["team_name"] for t in body[2]["teams"]] == ["Unassigned Team"]
    assert body[2]["teams"][0]["team_id"] is None
    assert body[2]["teams"][0]["total_spend"] == pytest.approx(0.375)


def test_report_range_includes_both_ends(api, auth, days):
    body = ok(report(api, auth, start_date="2025-03-03", end_date="2025-03-04"))

    assert [d["group_by_day"][:10] for d in body] == ["2025-03-03", "2025-03-04"]


def test_report_by_customer(api, auth, days):
    body = ok(report(api, auth, group_by="customer"))

    assert [(c["customer"], c["total_spend"]) for c in body[1]["customers"]] == [("cust-2", 4.0), ("cust-1", 0.5)]
    assert body[2]["customers"][0]["customer"] is None


def test_report_by_api_key_is_ranked_with_model_details(api, auth, days):
    body = ok(report(api, auth, group_by="api_key"))

    assert [(k["api_key"], k["total_cost"]) for k in body] == [
        (days.digest["carol"], 4.0),
        (days.digest["alice"], 2.0),
        (days.digest["bob"], 1.5),
        (days.digest["bob_own"], 0.25),
        ("", 0.125),
    ]
    bob = body[2]
    assert (bob["total_input_tokens"], bob["total_output_tokens"]) == (200, 100)
    assert bob["model_details"] == [
        {"model": "small", "total_cost": 1.5, "total_input_tokens": 200, "total_output_tokens": 100}
    ]


def test_report_by_model_is_ranked_with_key_details(api, auth, days):
    body = ok(report(api, auth, group_by="model"))

    assert [(m["model"], m["total_cost"]) for m in body] == [("small", 5.625), ("large", 2.0), ("gpt", 0.25)]
    assert body[0]["api_key_details"][0] == {
        "api_key": days.digest["carol"],
        "total_cost": 4.0,
        "total_input_tokens": 100,
        "total_output_tokens": 50,
    }


def test_report_filters_narrow_and_a_key_filter_groups_by_key(api, auth, days):
    by_key = ok(report(api, auth, api_key=days.secret["bob"]))
    by_user = ok(report(api, auth, internal_user_id="bob"))
    by_team = ok(report(api, auth, team_id="team-b"))
    by_customer = ok(report(api, auth, customer_id="cust-1", group_by="customer"))

    assert [k["api_key"] for k in by_key] == [days.digest["bob"]]
    assert [k["api_key"] for k in by_user] == [days.digest["bob"], days.digest["bob_own"]]
    assert [t["team_id"] for d in by_team for t in d["teams"]] == ["team-b"]
    assert {c["customer"] for d in by_customer for c in d["customers"]} == {"cust-1"}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"start_date": None}, "start_date"),
        ({"end_date": None}, "end_date"),
        ({"start_date": "2025-3-1"}, "start_date"),
        ({"start_date": "2025-03-02 10:00:00"}, "start_date"),
        ({"start_date": "2025-03-04", "end_date": "2025-03-01"}, "end_date"),
        ({"group_by": "planet"}, "group_by"),
    ],
)
def test_report_bad_input_is_a_400(api, auth, days, query, param):
    query = {**RANGE, **query}
    r = api.get("/global/spend/report", auth, **{k: v for k, v in query.items() if v is not None})

    assert error_of(r, 400)["param"] == param


def test_report_csv_flattens_the_report(api, auth, days):
    rows = read_csv(report(api, auth, format="csv"))

    assert list(rows[0]) == [
        "date",
        "team_id",
        "team_name",
        "model",
        "api_key",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "spend",
    ]
    assert len(rows) == 6
    assert rows[0]["date"] == "2025-03-01"
    assert rows[0]["team_name"] == "Team A"
    assert {r["team_name"] for r in rows if not r["team_id"]} == {"Unassigned Team"}
    assert sum(Decimal(r["spend"]) for r in rows) == Decimal("7.875")


def test_report_csv_by_key(api, auth, days):
    rows = read_csv(report(api, auth, format="csv", group_by="api_key"))

    assert list(rows[0])[:2] == ["api_key", "model"]
    assert len(rows) == 5


def test_team_admin_report_shows_only_their_team(api, days):
    body = ok(report(api, days.as_["alice"]))
    keyed = ok(report(api, days.as_["alice"], group_by="api_key"))

    assert {t["team_id"] for d in body for t in d["teams"]} == {"team-a"}
    assert {k["api_key"] for k in keyed} == {days.digest["alice"], days.digest["bob"]}
    assert ok(report(api, days.as_["alice"], team_id="team-b")) == []


def test_internal_user_report_shows_only_their_own_keys(api, days):
    keyed = ok(report(api, days.as_["bob"], group_by="api_key"))

    assert {k["api_key"] for k in keyed} == {days.digest["bob"], days.digest["bob_own"]}
    assert ok(report(api, days.as_["bob"], internal_user_id="carol")) == []


def test_viewer_report_shows_everything(api, days):
    assert len(ok(report(api, days.as_["viewer"], group_by="api_key"))) == 5


# --- /user/daily/activity -------------------------------------------------------------------


def test_activity_is_litellms_daily_shape_newest_first(api, auth, days):
    body = ok(activity(api, auth))

    assert [r["date"] for r in body["results"]] == ["2025-03-03", "2025-03-02", "2025-03-01"]
    second = body["results"][1]
    assert second["metrics"] == {
        "spend": 4.5,
        "prompt_tokens": 200,
        "completion_tokens": 100,
        "total_tokens": 300,
        "api_requests": 4,
        "successful_requests": 3,
        "failed_requests": 1,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    breakdown = second["breakdown"]
    assert set(breakdown) >= {"models", "model_groups", "providers", "api_keys", "mcp_servers", "endpoints", "entities"}
    assert breakdown["models"]["small"]["metrics"]["spend"] == 4.5
    assert set(breakdown["models"]["small"]["api_key_breakdown"]) == {days.digest["bob"], days.digest["carol"]}
    assert breakdown["providers"]["mistral"]["metrics"]["api_requests"] == 4
    carol = breakdown["api_keys"][days.digest["carol"]]
    assert carol["metrics"]["spend"] == 4.0
    assert carol["metadata"] == {"key_alias": None, "team_id": "team-b", "user_id": "carol", "key_exists": True}


def test_activity_metadata_totals_and_pages(api, auth, days):
    meta = ok(activity(api, auth))["metadata"]

    assert meta["total_spend"] == pytest.approx(7.875)
    assert meta["total_api_requests"] == 12
    assert meta["total_failed_requests"] == 1
    assert meta["total_successful_requests"] == 11
    assert meta["total_tokens"] == 900
    assert meta["total_prompt_tokens"] == 600
    assert (meta["page"], meta["total_pages"], meta["has_more"]) == (1, 1, False)


def test_activity_pages_through_whole_days(api, auth, days):
    first = ok(activity(api, auth, page_size=2))
    second = ok(activity(api, auth, page=2, page_size=2))
    beyond = ok(activity(api, auth, page=3, page_size=2))

    assert [r["date"] for r in first["results"]] == ["2025-03-03", "2025-03-02"]
    assert (first["metadata"]["total_pages"], first["metadata"]["has_more"]) == (2, True)
    assert [r["date"] for r in second["results"]] == ["2025-03-01"]
    assert second["metadata"]["has_more"] is False
    # Page totals add up to the range's.
    assert first["metadata"]["total_spend"] + second["metadata"]["total_spend"] == pytest.approx(7.875)
    assert beyond["results"] == [] and beyond["metadata"]["total_spend"] == 0


def test_activity_filters(api, auth, days):
    def dates(**query):
        return [r["date"] for r in ok(activity(api, auth, **query))["results"]]

    assert dates(model="large") == ["2025-03-01"]
    assert dates(api_key=days.secret["bob_own"]) == ["2025-03-03"]
    assert dates(api_key=days.digest["carol"]) == ["2025-03-02"]
    assert dates(user_id="bob") == ["2025-03-03", "2025-03-02", "2025-03-01"]
    assert dates(team_id="team-b") == ["2025-03-02"]
    assert dates(start_date="2025-03-02", end_date="2025-03-04") == ["2025-03-04", "2025-03-03", "2025-03-02"]


def test_activity_for_an_internal_user_is_their_own(api, days):
    body = ok(activity(api, days.as_["bob"]))

    keys = {k for r in body["results"] for k in r["breakdown"]["api_keys"]}
    assert keys == {days.digest["bob"], days.digest["bob_own"]}
    assert body["metadata"]["total_spend"] == pytest.approx(1.75)
    assert ok(activity(api, days.as_["bob"], user_id="carol"))["results"] == []


def test_activity_for_a_team_admin_covers_their_team(api, days):
    body = ok(activity(api, days.as_["carol"]))

    assert [r["date"] for r in body["results"]] == ["2025-03-02"]
    assert body["metadata"]["total_spend"] == 4.0
    assert ok(activity(api, days.as_["carol"], team_id="team-a"))["results"] == []


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"start_date": None}, "start_date"),
        ({"end_date": "tomorrow"}, "end_date"),
        ({"page": "0"}, "page"),
        ({"page_size": "5000"}, "page_size"),
    ],
)
def test_activity_bad_input_is_a_400(api, auth, days, query, param):
    query = {**RANGE, **query}
    r = api.get("/user/daily/activity", auth, **{k: v for k, v in query.items() if v is not None})

    assert error_of(r, 400)["param"] == param


def test_activity_csv_has_a_row_per_day_model_provider_and_key(api, auth, days):
    rows = read_csv(activity(api, auth, format="csv"))

    assert list(rows[0]) == [
        "date",
        "model",
        "provider",
        "api_key",
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "spend",
    ]
    assert len(rows) == 6
    assert sum(Decimal(r["spend"]) for r in rows) == Decimal("7.875")
    assert [r["date"] for r in read_csv(activity(api, auth, format="csv", page=1, page_size=1))] == [
        "2025-03-03",
        "2025-03-03",
    ]


def test_activity_csv_isolated_too(api, days):
    rows = read_csv(activity(api, days.as_["carol"], format="csv"))

    assert {r["api_key"] for r in rows} == {days.digest["carol"]}


# --- spend on /key/info and /team/info ------------------------------------------------------


def test_key_and_team_info_carry_spend(api, auth, world):
    from tenants.models import Team, VirtualKey

    VirtualKey.objects.filter(token=world.digest["bob"]).update(spend=Decimal("1.25"))
    Team.objects.filter(team_id="team-a").update(spend=Decimal("3.5"))

    assert ok(api.get("/key/info", auth, key=world.digest["bob"]))["info"]["spend"] == 1.25
    assert ok(api.get("/team/info", auth, team_id="team-a"))["team_info"]["spend"] == 3.5

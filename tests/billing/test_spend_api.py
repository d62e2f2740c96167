"""GET /spend/logs: LiteLLM's spend-log rows from the usage ledger, filtered, paged, exported,
and each caller sees only their own tenants' rows.

The world: team A (alice admin, bob member), team B (carol admin), a viewer, a team key without
a user. Ledger rows are made with the ORM, as the rollup is not needed to read them.
"""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from tenants import keys
from tenants.models import InternalUser
from tests.tenants import conftest as tenants_fixtures
from tests.tenants.conftest import bearer, error_of

# The tenants fixtures, usable here: pytest finds fixtures by their module-level names.
api = tenants_fixtures.api
make_key = tenants_fixtures.make_key
make_user = tenants_fixtures.make_user
team = tenants_fixtures.team
other_team = tenants_fixtures.other_team

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


class World:
    """Everyone's keys (headers and digests) and the ledger rows they made."""

    def __init__(self, make_user, make_key, team, other_team) -> None:
        self.alice = make_user("alice", team=team, role="admin")
        self.bob = make_user("bob", team=team)
        self.carol = make_user("carol", team=other_team, role="admin")
        self.viewer = make_user("vera", user_role=InternalUser.Role.PROXY_ADMIN_VIEWER)
        self.root = make_user("root", user_role=InternalUser.Role.PROXY_ADMIN)
        made = {
            "alice": make_key(user=self.alice, team=team),
            "bob": make_key(user=self.bob, team=team),
            "bob_own": make_key(user=self.bob),
            "carol": make_key(user=self.carol, team=other_team),
            "viewer": make_key(user=self.viewer),
            "root": make_key(user=self.root),
            "team_a": make_key(team=team),
        }
        self.secret = {name: secret for name, (_, secret) in made.items()}
        self.digest = {name: row.token for name, (row, _) in made.items()}
        self.as_ = {name: bearer(secret) for name, secret in self.secret.items()}

    def usage(self, request_id: str, key: str, ended: dt.datetime, **fields) -> UsageRecord:
        """A ledger row made with `key` (a name above, or "master")."""
        owner = {
            "alice": ("team-a", "alice"),
            "bob": ("team-a", "bob"),
            "bob_own": ("", "bob"),
            "carol": ("team-b", "carol"),
            "team_a": ("team-a", ""),
            "master": ("", ""),
        }[key]
        defaults = {
            "started_at": ended - dt.timedelta(seconds=2),
            "latency_ms": 2000.0,
            "endpoint": "chat",
            "key_hash": self.digest.get(key, ""),
            "key_name": keys.hint(self.secret[key]) if key in self.secret else "",
            "team_id": owner[0],
            "user_id": owner[1],
            "model": "small",
            "provider": "mistral",
            "provider_model": "mistral-small-latest",
            "deployment_id": 7,
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cost": Decimal("0.000150000000"),
            "input_cost_per_token": Decimal("0.000010000000000"),
            "output_cost_per_token": Decimal("0.000010000000000"),
            "price_source": "shipped:mistral/mistral-small-latest",
            "status": 200,
        }
        return UsageRecord.objects.create(request_id=request_id, ended_at=ended, **{**defaults, **fields})


@pytest.fixture
def world(make_user, make_key, team, other_team) -> World:
    return World(make_user, make_key, team, other_team)


@pytest.fixture
def ledger(world) -> World:
    """Five requests over 1 to 3 March 2025, oldest first: r1 to r5."""
    world.usage("r1", "bob", at(1, 10), end_user="cust-1", time_to_first_token_ms=150.0, stream=True)
    world.usage("r2", "alice", at(2, 9), cost=Decimal("0.5"))
    world.usage("r3", "carol", at(2, 10), model="large", provider_model="mistral-large-latest")
    world.usage(
        "r4", "bob_own", at(3, 8), status=429, error_type="rate_limit_exceeded", cost=Decimal(0), tokens_estimated=True
    )
    world.usage("r5", "master", at(3, 23, 59, 59), endpoint="embeddings")
    return world


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    body = response.json()
    return [row["request_id"] for row in (body["data"] if isinstance(body, dict) else body)]


def logs(api, headers, **query):
    return api.get("/spend/logs", headers, **query)


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/spend/logs", "/global/spend/report", "/user/daily/activity"])
def test_no_key_gets_401(client, route):
    error = error_of(client.get(route, {"start_date": "2025-03-01", "end_date": "2025-03-03"}), 401)
    assert error["type"] == "authentication_error"


def test_unknown_key_gets_401(client):
    error_of(client.get("/spend/logs", **bearer("sk-unknown-0123456789abcdef")), 401)


# --- rows -----------------------------------------------------------------------------------


def test_master_key_lists_every_row_newest_first_as_a_bare_array(api, auth, ledger):
    r = logs(api, auth)

    assert ids(r) == ["r5", "r4", "r3", "r2", "r1"]
    assert r["X-Total-Count"] == "5"


def test_row_has_litellm_fields_and_tollgates_own(api, auth, ledger):
    row = logs(api, auth, request_id="r1").json()[0]

    assert row["api_key"] == ledger.digest["bob"]
    assert row["call_type"] == "acompletion"
    assert row["startTime"] == "2025-03-01T09:59:58Z"
    assert row["endTime"] == "2025-03-01T10:00:00Z"
    assert row["completionStartTime"] == "2025-03-01T09:59:58.150000Z"
    assert row["request_duration_ms"] == 2000
    assert (row["model"], row["model_group"], row["model_id"]) == ("mistral-small-latest", "small", "7")
    assert row["custom_llm_provider"] == "mistral"
    assert (row["user"], row["team_id"], row["end_user"]) == ("bob", "team-a", "cust-1")
    assert row["spend"] == pytest.approx(0.00015)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (10, 5, 15)
    assert row["status"] == "success"
    assert row["metadata"]["user_api_key"] == ledger.digest["bob"]
    assert row["metadata"]["user_api_key_team_id"] == "team-a"
    for absent in ("messages", "response", "request_tags", "cache_hit", "api_base", "session_id"):
        assert absent in row
    assert row["latency_ms"] == 2000.0
    assert row["time_to_first_token_ms"] == 150.0
    assert row["tokens_estimated"] is False
    assert row["input_cost_per_token"] == pytest.approx(0.00001)
    assert row["stream"] is True
    assert row["status_code"] == 200
    assert row["key_name"] == keys.hint(ledger.secret["bob"])


def test_failed_request_reads_as_failure_with_its_error(api, auth, ledger):
    row = logs(api, auth, request_id="r4").json()[0]

    assert row["status"] == "failure"
    assert row["status_code"] == 429
    assert row["error_type"] == "rate_limit_exceeded"
    assert row["metadata"]["error_information"] == {"error_code": "429", "error_class": "rate_limit_exceeded"}
    assert row["tokens_estimated"] is True


def test_no_key_appears_in_any_answer(api, auth, ledger):
    body = logs(api, auth).content.decode() + logs(api, auth, format="csv").getvalue().decode()

    for secret in ledger.secret.values():
        assert secret not in body


# --- filters --------------------------------------------------------------------------------


def test_filter_by_request_id(api, auth, ledger):
    assert ids(logs(api, auth, request_id="r3")) == ["r3"]
    assert ids(logs(api, auth, request_id="nope")) == []


def test_filter_by_api_key_takes_the_key_or_its_digest(api, auth, ledger):
    assert ids(logs(api, auth, api_key=ledger.secret["bob"])) == ["r1"]
    assert ids(logs(api, auth, api_key=ledger.digest["bob"])) == ["r1"]


def test_filter_by_user_and_team(api, auth, ledger):
    assert ids(logs(api, auth, user_id="bob")) == ["r4", "r1"]
    assert ids(logs(api, auth, team_id="team-a")) == ["r2", "r1"]
    assert ids(logs(api, auth, user_id="bob", team_id="team-a")) == ["r1"]


def test_dates_are_whole_utc_days_both_ends_included(api, auth, ledger):
    assert ids(logs(api, auth, start_date="2025-03-02", end_date="2025-03-03")) == ["r5", "r4", "r3", "r2"]
    assert ids(logs(api, auth, start_date="2025-03-02")) == ["r5", "r4", "r3", "r2"]
    assert ids(logs(api, auth, end_date="2025-03-01")) == ["r1"]
    assert ids(logs(api, auth, start_date="2025-03-03", end_date="2025-03-03")) == ["r5", "r4"]


def test_dates_may_be_instants_as_litellms_ui_sends_them(api, auth, ledger):
    assert ids(logs(api, auth, start_date="2025-03-02 09:30:00", end_date="2025-03-03 08:00:00")) == ["r4", "r3"]
    assert ids(logs(api, auth, start_date="2025-03-02T10:00:00Z")) == ["r5", "r4", "r3"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"start_date": "03/01/2025"}, "start_date"),
        ({"end_date": "2025-02-30"}, "end_date"),
        ({"start_date": "2025-03-03", "end_date": "2025-03-01"}, "end_date"),
        ({"page": "0"}, "page"),
        ({"page_size": "1001"}, "page_size"),
        ({"page": "x"}, "page"),
        ({"summarize": "true"}, "start_date"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, auth, ledger, query, param):
    error = error_of(logs(api, auth, **query), 400)

    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


# --- pagination -----------------------------------------------------------------------------


def test_page_gives_litellms_paginated_form(api, auth, ledger):
    first = logs(api, auth, page=1, page_size=2).json()
    last = logs(api, auth, page=3, page_size=2).json()
    beyond = logs(api, auth, page=4, page_size=2).json()

    assert [r["request_id"] for r in first["data"]] == ["r5", "r4"]
    assert {k: first[k] for k in ("total", "page", "page_size", "total_pages")} == {
        "total": 5,
        "page": 1,
        "page_size": 2,
        "total_pages": 3,
    }
    assert [r["request_id"] for r in last["data"]] == ["r1"]
    assert beyond["data"] == [] and beyond["total"] == 5


def test_page_alone_uses_the_default_page_size(api, auth, ledger):
    body = logs(api, auth, page=1).json()

    assert body["page_size"] == 50
    assert len(body["data"]) == 5


def test_bare_array_is_capped_and_says_how_many_matched(api, auth, ledger, monkeypatch):
    from billing.api import spendlogs

    monkeypatch.setattr(spendlogs, "MAX_LISTED", 2)
    r = logs(api, auth)

    assert ids(r) == ["r5", "r4"]
    assert r["X-Total-Count"] == "5"


# --- summarize ------------------------------------------------------------------------------


def test_summarize_gives_litellms_per_day_summary_with_empty_days(api, auth, ledger):
    days = logs(api, auth, start_date="2025-03-02", end_date="2025-03-04", summarize="true").json()

    assert [d["startTime"] for d in days] == ["2025-03-02", "2025-03-03", "2025-03-04"]
    second = days[0]
    assert second["spend"] == pytest.approx(0.50015)
    assert second[ledger.digest["alice"]] == pytest.approx(0.5)
    assert second["users"] == {"alice": pytest.approx(0.5), "carol": pytest.approx(0.00015)}
    assert second["models"] == {"small": pytest.approx(0.5), "large": pytest.approx(0.00015)}
    assert days[2] == {"startTime": "2025-03-04", "spend": 0.0, "users": {}, "models": {}}


# --- CSV ------------------------------------------------------------------------------------


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_streams_every_matching_row_with_a_header(api, auth, ledger):
    rows = read_csv(logs(api, auth, format="csv", team_id="team-a"))

    assert [r["request_id"] for r in rows] == ["r2", "r1"]
    assert rows[0]["spend"] == "0.5"
    assert rows[1]["api_key"] == ledger.digest["bob"]
    assert rows[1]["input_cost_per_token"] == "0.00001"
    assert rows[1]["stream"] == "true"
    assert rows[1]["endTime"] == "2025-03-01T10:00:00Z"


def test_csv_is_also_chosen_by_the_accept_header(api, auth, ledger):
    r = api.client.get("/spend/logs", {"request_id": "r3"}, HTTP_ACCEPT="text/csv", **auth)

    assert [row["request_id"] for row in read_csv(r)] == ["r3"]


def test_csv_export_honours_a_page(api, auth, ledger):
    rows = read_csv(logs(api, auth, format="csv", page=2, page_size=2))

    assert [r["request_id"] for r in rows] == ["r3", "r2"]


def test_csv_cells_cannot_start_a_formula(api, auth, world):
    world.usage("evil", "bob", at(1), end_user="=HYPERLINK(1)")

    assert read_csv(logs(api, auth, format="csv"))[0]["end_user"] == "'=HYPERLINK(1)"


def test_csv_request_with_bad_input_gets_the_json_error(api, auth, ledger):
    r = logs(api, auth, format="csv", start_date="yesterday")

    assert r["Content-Type"] == "application/json"
    assert error_of(r, 400)["param"] == "start_date"


# --- who sees what --------------------------------------------------------------------------


def test_viewer_and_proxy_admin_users_see_every_row(api, ledger):
    assert len(ids(logs(api, ledger.as_["viewer"]))) == 5
    assert len(ids(logs(api, ledger.as_["root"]))) == 5


def test_team_admin_sees_their_teams_rows_and_their_own_only(api, ledger):
    assert ids(logs(api, ledger.as_["alice"])) == ["r2", "r1"]
    assert ids(logs(api, ledger.as_["carol"])) == ["r3"]


def test_team_admin_asking_for_another_team_gets_nothing(api, ledger):
    assert ids(logs(api, ledger.as_["alice"], team_id="team-b")) == []
    assert ids(logs(api, ledger.as_["alice"], request_id="r3")) == []
    assert ids(logs(api, ledger.as_["alice"], api_key=ledger.secret["carol"])) == []


def test_internal_user_sees_the_rows_of_all_their_keys_only(api, ledger):
    assert ids(logs(api, ledger.as_["bob"])) == ["r4", "r1"]
    assert ids(logs(api, ledger.as_["bob"], user_id="alice")) == []
    assert ids(logs(api, ledger.as_["bob"], team_id="team-a")) == ["r1"]


def test_key_without_a_user_sees_its_own_rows_only(api, ledger):
    ledger.usage("r6", "team_a", at(2, 11))

    assert ids(logs(api, ledger.as_["team_a"])) == ["r6"]


def test_isolation_holds_for_summaries_and_csv(api, ledger):
    summary = logs(api, ledger.as_["carol"], start_date="2025-03-01", end_date="2025-03-03", summarize="true").json()
    rows = read_csv(logs(api, ledger.as_["carol"], format="csv"))

    assert {user for day in summary for user in day["users"]} == {"carol"}
    assert [r["request_id"] for r in rows] == ["r3"]


# --- schema ---------------------------------------------------------------------------------


def test_spend_routes_are_in_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]

    for route in ("/spend/logs", "/global/spend/report", "/user/daily/activity"):
        assert "get" in paths[route]
    names = {p["name"] for p in paths["/spend/logs"]["get"]["parameters"]}
    assert {"request_id", "api_key", "user_id", "team_id", "start_date", "end_date", "page", "page_size"} <= names

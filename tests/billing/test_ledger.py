"""The usage ledger through the LLM API: one row per request that reaches an LLM endpoint.

Requests go through Django's test client to deployments on the fake Mistral and the fake
OpenAI-compatible server (tests/fakes), or to mock deployments. Prices come from the shipped table
(tests/billing/conftest.py), so a row's cost is its tokens times the list price it names.
"""

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import UsageRecord
from tenants import keys
from tenants.models import InternalUser, Team, TeamMembership
from tests.conftest import HI
from tests.fakes.openai import FakeOpenAI
from tests.tenants.conftest import bearer

CHAT = "/v1/chat/completions"


def post(client, headers, body, path=CHAT, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", **headers, **extra)


def read(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def the_row() -> UsageRecord:
    """The one usage row there must be."""
    [row] = UsageRecord.objects.all()
    return row


def assert_priced(row: UsageRecord) -> None:
    """The row's cost is its tokens at the unit prices it records."""
    assert row.cost == row.input_cost_per_token * row.prompt_tokens + row.output_cost_per_token * row.completion_tokens


@pytest.fixture
def small(fake_mistral, deployment_for):
    return deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest")


@pytest.fixture
def member_key(db) -> tuple:
    """A key of alice, a member of team-a: (key row, headers)."""
    team = Team.objects.create(team_id="team-a")
    alice = InternalUser.objects.create(user_id="alice")
    TeamMembership.objects.create(team=team, user=alice)
    key, secret = keys.create(team=team, user=alice)
    return key, bearer(secret)


def assert_tenant_columns(row: UsageRecord, key) -> None:
    assert (row.key_hash, row.key_name, row.team_id, row.user_id) == (key.token, key.key_name, "team-a", "alice")


# --- refused: recorded at zero cost, with the status and error the caller got --------------------


def assert_refused(response, status: int, error_type: str, *, model: str = "") -> UsageRecord:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert (error["code"] or error["type"]) == error_type
    row = the_row()
    assert (row.status, row.error_type, row.model) == (status, error_type, model)
    assert (row.cost, row.prompt_tokens, row.completion_tokens, row.total_tokens) == (0, 0, 0, 0)
    assert (row.deployment_id, row.provider, row.price_source) == (None, "", "")
    assert row.request_id == response["x-request-id"]
    assert row.endpoint == "chat"
    return row


def test_a_bad_key_is_recorded_without_a_key_hash(client, small, fake_mistral):
    r = post(client, bearer("sk-not-a-key"), {"model": "small", "messages": HI})

    row = assert_refused(r, 401, "invalid_api_key")  # the body of an unauthenticated request is not read
    assert (row.key_hash, row.key_name, row.team_id, row.user_id) == ("", "", "", "")
    assert fake_mistral.requests == []


def test_malformed_json_is_recorded_with_the_key(client, small, member_key):
    key, headers = member_key

    r = post(client, headers, '{"model": "small", "messages": [')

    assert_tenant_columns(assert_refused(r, 400, "invalid_json"), key)


def test_a_field_of_the_wrong_type_is_recorded_with_the_model_asked_for(client, small, member_key):
    key, headers = member_key

    r = post(client, headers, {"model": "small", "messages": "Hi", "user": "ada"})

    row = assert_refused(r, 400, "invalid_type", model="small")
    assert_tenant_columns(row, key)
    assert row.end_user == "ada"


def test_a_body_too_large_is_recorded(client, small, member_key, settings):
    settings.TOLLGATE_MAX_REQUEST_BYTES = 200
    key, headers = member_key

    r = post(client, headers, {"model": "small", "messages": [{"role": "user", "content": "x" * 500}]})

    assert_tenant_columns(assert_refused(r, 413, "request_too_large"), key)


def test_an_unknown_model_is_recorded_under_the_name_asked_for(client, small, member_key):
    key, headers = member_key

    r = post(client, headers, {"model": "no-such-model", "messages": HI})

    assert_tenant_columns(assert_refused(r, 404, "model_not_found", model="no-such-model"), key)


def test_a_model_the_key_may_not_use_is_recorded(client, small, member_key, deployment_for, fake_mistral):
    deployment_for(fake_mistral, alias="large", model="mistral/mistral-large-latest")
    key, headers = member_key
    key.allowed_models = ["small"]
    key.save()
    keys.clear_cache()

    r = post(client, headers, {"model": "large", "messages": HI})

    assert_tenant_columns(assert_refused(r, 403, "model_not_allowed", model="large"), key)
    assert fake_mistral.requests == []


def test_an_exceeded_budget_is_recorded_at_zero_cost(client, small, member_key, fake_mistral):
    key, headers = member_key
    key.max_budget = Decimal("0.0000001")  # less than any call's worst case
    key.save()
    keys.clear_cache()

    r = post(client, headers, {"model": "small", "messages": HI})

    assert_tenant_columns(assert_refused(r, 429, "budget_exceeded", model="small"), key)
    assert fake_mistral.requests == []
    key.refresh_from_db()
    assert (key.spend, key.reserved) == (0, 0)


def test_a_rate_limited_request_is_recorded_at_zero_cost(client, small, member_key, fake_mistral):
    key, headers = member_key
    key.rpm_limit = 1
    key.save()
    keys.clear_cache()
    if time.time() % 60 > 58:  # rate windows are calendar minutes: keep both calls in one
        time.sleep(60 - time.time() % 60 + 0.05)

    assert post(client, headers, {"model": "small", "messages": HI}).status_code == 200
    r = post(client, headers, {"model": "small", "messages": HI})

    assert r.status_code == 429, r.content
    answered, refused = UsageRecord.objects.order_by("id")
    assert (answered.status, refused.status, refused.error_type) == (200, 429, "rate_limit_exceeded")
    assert (refused.cost, refused.total_tokens, refused.model) == (0, 0, "small")
    assert_tenant_columns(refused, key)
    assert answered.cost > 0
    assert len(fake_mistral.requests) == 1


# --- failed upstream calls: the status the caller got, nothing used, nothing billed ---------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("upstream", "status"), [(400, 400), (401, 502), (429, 429), (500, 502), (503, 503)])
def test_a_provider_error_is_recorded_as_a_failure_at_zero_cost(
    client, auth, small, fake_mistral, upstream, status, stream
):
    fake_mistral.fail(upstream)

    r = post(client, auth, {"model": "small", "messages": HI, "stream": stream})

    assert r.status_code == status, r.content  # failed before the first byte: a plain error, even for a stream
    row = the_row()
    error = r.json()["error"]
    assert (row.status, row.error_type, row.stream) == (status, error["code"] or error["type"], stream)
    assert row.error_type
    assert (row.cost, row.prompt_tokens, row.completion_tokens, row.tokens_estimated) == (0, 0, 0, False)
    assert (row.model, row.deployment_id, row.provider) == ("small", small.pk, "mistral")


def test_a_provider_timeout_is_recorded_as_504(client, auth, fake_mistral, deployment_for):
    slow = deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest", timeout=0.3)
    fake_mistral.hang(1.0)

    r = post(client, auth, {"model": "small", "messages": HI})

    assert r.status_code == 504, r.content
    row = the_row()
    assert (row.status, row.error_type, row.cost, row.total_tokens) == (504, "upstream_timeout", 0, 0)
    assert row.deployment_id == slow.pk
    assert row.latency_ms >= 300


def test_a_stream_the_provider_cuts_is_recorded_with_what_was_relayed(client, auth, small, fake_mistral):
    fake_mistral.cut_stream(2)

    r = post(
        client, auth, {"model": "small", "messages": [{"role": "user", "content": "one two three"}], "stream": True}
    )
    read(r)

    row = the_row()
    assert (row.status, row.stream, row.tokens_estimated) == (502, True, True)
    assert row.completion_tokens >= 1 and row.prompt_tokens > 0
    assert row.error_type
    assert_priced(row)


def test_a_stream_that_times_out_mid_way_is_recorded_as_504(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="small", model="mistral/mistral-small-latest", stream_timeout=0.2)
    fake_mistral.reply_stream(["a", "b"], delay=0.5)

    events = read(post(client, auth, {"model": "small", "messages": HI, "stream": True}))

    assert b'"status":504' in events
    row = the_row()
    assert (row.error_type, row.stream, row.tokens_estimated) == ("upstream_timeout", True, True)
    assert row.status == 504


# --- every LLM endpoint ---------------------------------------------------------------------------


def test_embeddings_are_recorded_with_prompt_tokens_only(client, auth, fake_mistral, deployment_for):
    embed = deployment_for(fake_mistral, alias="embed", model="mistral/mistral-embed")

    r = post(client, auth, {"model": "embed", "input": ["one two three", "four"]}, path="/v1/embeddings")

    assert r.status_code == 200, r.content
    row = the_row()
    assert (row.endpoint, row.model, row.deployment_id, row.provider_model) == (
        "embeddings",
        "embed",
        embed.pk,
        "mistral-embed",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (4, 0, 4)
    assert row.cost == row.input_cost_per_token * 4 > 0
    assert row.price_source == "list:mistral/mistral-embed"


def test_fim_is_recorded(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="code", model="codestral/codestral-latest")
    body = {"model": "code", "prompt": "def add(a, b):", "suffix": "print(add(1, 2))"}

    r = post(client, auth, body, path="/v1/fim/completions")

    assert r.status_code == 200, r.content
    usage = r.json()["usage"]
    row = the_row()
    assert (row.endpoint, row.model, row.stream) == ("fim", "code", False)
    assert (row.prompt_tokens, row.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row.total_tokens > 0
    assert row.cost > 0
    assert_priced(row)
    assert Decimal(r["x-tollgate-cost"]) == row.cost


def test_text_completions_are_recorded(client, auth, fake_mistral, deployment_for):
    deployment_for(fake_mistral, alias="code", model="text-completion-codestral/codestral-latest")

    r = post(client, auth, {"model": "code", "prompt": "def add(a, b):"}, path="/v1/completions")

    assert r.status_code == 200, r.content
    usage = r.json()["usage"]
    row = the_row()
    assert (row.endpoint, row.model, row.status) == ("completions", "code", 200)
    assert (row.prompt_tokens, row.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row.cost > 0
    assert_priced(row)


def test_a_refused_embeddings_request_names_its_endpoint(client, auth, db):
    r = post(client, auth, {"model": "nowhere", "input": "x"}, path="/v1/embeddings")

    assert r.status_code == 404
    assert (the_row().endpoint, the_row().model) == ("embeddings", "nowhere")


# --- who: tenants, end user, request id -----------------------------------------------------------


def test_a_member_keys_row_names_its_key_team_user_and_end_user(client, small, member_key, fake_mistral):
    key, headers = member_key
    other = Team.objects.create(team_id="team-b")
    other_key, other_secret = keys.create(team=other)

    post(client, headers, {"model": "small", "messages": HI, "user": "customer-42"})
    post(client, bearer(other_secret), {"model": "small", "messages": HI})

    mine, theirs = UsageRecord.objects.order_by("id")
    assert_tenant_columns(mine, key)
    assert mine.end_user == "customer-42"
    assert (theirs.key_hash, theirs.team_id, theirs.user_id, theirs.end_user) == (other_key.token, "team-b", "", "")


def test_a_callers_request_id_is_kept_and_may_repeat(client, auth, small):
    for _ in range(2):
        r = post(client, auth, {"model": "small", "messages": HI}, HTTP_X_REQUEST_ID="my-trace-0001")
        assert r["x-request-id"] == "my-trace-0001"

    rows = list(UsageRecord.objects.order_by("id"))
    assert [row.request_id for row in rows] == ["my-trace-0001", "my-trace-0001"]
    assert rows[0].pk != rows[1].pk


def test_each_request_without_an_id_gets_its_own(client, auth, small):
    first = post(client, auth, {"model": "small", "messages": HI})
    second = post(client, auth, {"model": "small", "messages": HI})

    ids = list(UsageRecord.objects.order_by("id").values_list("request_id", flat=True))
    assert ids == [first["x-request-id"], second["x-request-id"]]
    assert ids[0] != ids[1]


# --- streams priced from the provider's usage, or estimated when it reports none ------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI.running() as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    openai_server.reset()
    yield openai_server
    openai_server.reset()


def test_an_openai_stream_is_priced_from_the_usage_tollgate_asked_for(client, auth, fake_openai, deployment_for):
    deployment_for(fake_openai, alias="gpt", model="openai/gpt-4o-mini")
    fake_openai.reply_stream(["Hel", "lo"], prompt_tokens=12, completion_tokens=2)

    r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True})  # the caller did not ask for usage

    assert b"usage" not in read(r).replace(b'"usage":null', b"")
    assert fake_openai.last_request.json["stream_options"] == {"include_usage": True}
    row = the_row()
    assert (row.stream, row.status, row.tokens_estimated) == (True, 200, False)
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (12, 2, 14)
    assert (row.provider, row.provider_model, row.price_source) == ("openai", "gpt-4o-mini", "list:openai/gpt-4o-mini")
    assert row.cost == Decimal("0.15") / 10**6 * 12 + Decimal("0.6") / 10**6 * 2
    assert_priced(row)


class UsagelessOpenAI(FakeOpenAI):
    """An OpenAI-compatible server that ignores `stream_options` (as some self-hosted ones do): no usage."""

    def _answer(self, h, path, body, bad_json):
        if isinstance(body, dict):
            body.pop("stream_options", None)
        return super()._answer(h, path, body, bad_json)


def test_a_completed_stream_without_usage_is_recorded_with_estimated_tokens(client, auth, deployment_for):
    with UsagelessOpenAI.running() as fake:
        deployment_for(fake, alias="gpt", model="openai/gpt-4o-mini")
        fake.reply_stream(["The answer", " is", " forty-two."], prompt_tokens=12, completion_tokens=3)

        r = post(client, auth, {"model": "gpt", "messages": HI, "stream": True})

        assert read(r).endswith(b"data: [DONE]\n\n")
    row = the_row()
    assert (row.status, row.stream, row.tokens_estimated, row.error_type) == (200, True, True, "")
    assert row.prompt_tokens > 0 and row.completion_tokens > 0  # counted by Tollgate
    assert row.cost > 0
    assert_priced(row)


# --- prices ---------------------------------------------------------------------------------------


def test_a_row_records_the_list_prices_it_used(client, auth, small, fake_mistral):
    from billing import prices

    fake_mistral.reply("ok", prompt_tokens=100, completion_tokens=10)

    post(client, auth, {"model": "small", "messages": HI})

    row = the_row()
    listed = prices.find("mistral", "mistral-small-latest")
    assert (row.input_cost_per_token, row.output_cost_per_token) == (listed.input, listed.output)
    assert row.price_source == "list:mistral/mistral-small-latest"
    assert row.cost == listed.input * 100 + listed.output * 10


def test_a_deployments_own_prices_override_the_list(client, auth, fake_mistral, deployment_for):
    deployment_for(
        fake_mistral,
        alias="small",
        model="mistral/mistral-small-latest",
        input_cost_per_token=Decimal("0.00001"),
        output_cost_per_token=Decimal("0.00003"),
    )
    fake_mistral.reply("ok", prompt_tokens=100, completion_tokens=10)

    r = post(client, auth, {"model": "small", "messages": HI})

    row = the_row()
    assert row.price_source == "deployment"
    assert (row.input_cost_per_token, row.output_cost_per_token) == (Decimal("0.00001"), Decimal("0.00003"))
    assert row.cost == Decimal("0.0013") == Decimal(r["x-tollgate-cost"])


# --- spend: settled on the rows with a limit, the rest by the rollup, each once -------------------


def test_spend_reaches_every_tenant_row_once_whichever_path_counted_it(client, small, member_key, fake_mistral):
    from billing import rollup

    key, headers = member_key
    key.max_budget = Decimal(100)  # the key and the membership carry limits; the user and team do not
    key.save()
    TeamMembership.objects.update(max_budget_in_team=Decimal(100))
    keys.clear_cache()
    fake_mistral.reply("ok", prompt_tokens=100, completion_tokens=10)

    assert post(client, headers, {"model": "small", "messages": HI}).status_code == 200
    rollup.run()
    rollup.run()

    row = the_row()
    assert row.cost > 0 and row.rolled_up
    key.refresh_from_db()
    spends = (
        key.spend,
        InternalUser.objects.get().spend,
        Team.objects.get().spend,
        TeamMembership.objects.get().spend,
    )
    assert spends == (row.cost,) * 4
    assert key.reserved == 0


# --- the hot path: one INSERT per request ---------------------------------------------------------


def usage_inserts(queries: CaptureQueriesContext) -> int:
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    return sum(q["sql"].lstrip().upper().startswith(f"INSERT INTO {table.upper()}") for q in queries.captured_queries)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "small", "messages": HI}, 200),
        ({"model": "small", "messages": HI, "stream": True}, 200),
        ({"model": "small", "messages": "Hi"}, 400),
        ({"model": "nope", "messages": HI}, 404),
    ],
    ids=["json", "stream", "bad-body", "unknown-model"],
)
def test_each_request_inserts_exactly_one_usage_row(client, small, member_key, body, status):
    key, headers = member_key
    key.max_budget = Decimal(100)  # a limit: the spend is committed in the same transaction as the row
    key.save()
    keys.clear_cache()

    with CaptureQueriesContext(connection) as queries:
        r = post(client, headers, body)
        read(r)

    assert r.status_code == status
    assert usage_inserts(queries) == 1
    assert UsageRecord.objects.count() == 1


def test_a_failed_upstream_call_inserts_exactly_one_usage_row(client, auth, small, fake_mistral):
    fake_mistral.fail(500)

    with CaptureQueriesContext(connection) as queries:
        assert post(client, auth, {"model": "small", "messages": HI}).status_code == 502

    assert usage_inserts(queries) == 1

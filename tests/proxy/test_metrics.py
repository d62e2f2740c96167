"""GET /metrics: Prometheus values after a known sequence of calls, read back from the exposition text.

Metrics are process-wide and cumulative, so each test compares a scrape after its calls with a
scrape before them.
"""

import json
import time
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing.ledger import Outcome
from billing.models import UsageRecord
from proxy import metrics
from proxy.models import LoadedConfig
from tests.conftest import HI
from tests.fakes.mistral import FakeMistral

Samples = dict[tuple[str, frozenset], float]


def scrape(client) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.content.decode())
        for s in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def chat(client, auth, model="small", **fields):
    body = json.dumps({"model": model, "messages": HI, **fields})
    return client.post("/v1/chat/completions", data=body, content_type="application/json", **auth)


@pytest.fixture
def other_fake():
    with FakeMistral.running() as server:
        yield server


def test_requests_tokens_spend_latency_and_errors_after_known_calls(client, auth, fake_mistral, deployment_for):
    small = deployment_for(fake_mistral, alias="small")
    d = str(small.pk)
    before = scrape(client)
    fake_mistral.reply("One", prompt_tokens=10, completion_tokens=5)
    fake_mistral.reply("Two", prompt_tokens=20, completion_tokens=7)
    fake_mistral.fail(503)
    fake_mistral.reply_stream(["a", "b", "c"], prompt_tokens=4, completion_tokens=3)

    assert [chat(client, auth).status_code for _ in range(3)] == [200, 200, 503]
    assert b"[DONE]" in b"".join(chat(client, auth, stream=True).streaming_content)
    assert chat(client, auth, model="nope").status_code == 404
    after = scrape(client)

    requests = "tollgate_requests_total"
    assert delta(before, after, requests, model="small", deployment=d, status="200", endpoint="chat") == 3
    assert delta(before, after, requests, model="small", deployment=d, status="503", endpoint="chat") == 1
    assert delta(before, after, requests, model="nope", deployment="", status="404", endpoint="chat") == 1
    assert delta(before, after, "tollgate_tokens_total", model="small", deployment=d, kind="prompt") == 34
    assert delta(before, after, "tollgate_tokens_total", model="small", deployment=d, kind="completion") == 15
    spend = sum(row.cost for row in UsageRecord.objects.all())
    assert spend > 0
    assert delta(before, after, "tollgate_spend_usd_total", model="small", deployment=d) == pytest.approx(float(spend))
    assert delta(before, after, "tollgate_errors_total", model="small", error_type="1000") == 1  # Mistral's code
    assert delta(before, after, "tollgate_errors_total", model="nope", error_type="model_not_found") == 1
    assert delta(before, after, "tollgate_request_latency_seconds_count", model="small", endpoint="chat") == 4
    assert delta(before, after, "tollgate_upstream_latency_seconds_count", model="small", deployment=d) == 3
    assert delta(before, after, "tollgate_overhead_latency_seconds_count", model="small") == 3
    assert delta(before, after, "tollgate_time_to_first_token_seconds_count", model="small") == 1
    total = delta(before, after, "tollgate_request_latency_seconds_sum", model="small", endpoint="chat")
    upstream = delta(before, after, "tollgate_upstream_latency_seconds_sum", model="small", deployment=d)
    overhead = delta(before, after, "tollgate_overhead_latency_seconds_sum", model="small")
    assert 0 < upstream < total
    assert overhead > 0


def test_retries_and_fallbacks_are_counted(client, auth, fake_mistral, other_fake, deployment_for):
    LoadedConfig.objects.create(
        path="tests.yaml", sha256="0" * 64, router_settings={"num_retries": 1, "fallbacks": [{"small": ["backup"]}]}
    )
    deployment_for(fake_mistral, alias="small")
    backup = deployment_for(other_fake, alias="backup")
    before = scrape(client)

    fake_mistral.fail(503)  # retried, then answered
    assert chat(client, auth).status_code == 200
    fake_mistral.fail(503)
    fake_mistral.fail(503)  # both attempts fail: the backup group answers
    assert chat(client, auth)["x-tollgate-fallback"] == "backup"
    after = scrape(client)

    assert delta(before, after, "tollgate_retries_total", model="small") == 1 + 2
    assert delta(before, after, "tollgate_fallbacks_total", model="small", group="backup") == 1
    requests = {"model": "small", "deployment": str(backup.pk), "status": "200", "endpoint": "chat"}
    assert delta(before, after, "tollgate_requests_total", **requests) == 1


def test_deployment_cooldown_is_a_gauge(client, auth, fake_mistral, other_fake, deployment_for):
    LoadedConfig.objects.create(
        path="tests.yaml", sha256="0" * 64, router_settings={"allowed_fails": 0, "cooldown_time": 30}
    )
    failing = deployment_for(fake_mistral, alias="small", order=1)
    other = deployment_for(other_fake, alias="small", order=2)
    fake_mistral.fail(503)

    assert chat(client, auth).status_code == 503
    samples = scrape(client)

    def cooling(deployment) -> float:
        return samples[
            ("tollgate_deployment_cooldown", frozenset({"model": "small", "deployment": str(deployment.pk)}.items()))
        ]

    assert (cooling(failing), cooling(other)) == (1, 0)


def test_metrics_are_open_unless_a_key_is_required(client, auth, settings, db):
    assert client.get("/metrics").status_code == 200

    settings.TOLLGATE_METRICS_REQUIRE_KEY = True

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", **auth).status_code == 200


def test_observing_a_call_costs_a_few_microseconds():
    outcome = Outcome(
        request_id="r",
        started_at=time.time(),
        endpoint="chat",
        status=200,
        latency_ms=12.5,
        time_to_first_token_ms=3.0,
        model="bench",
        model_group="bench",
        attempts=1,
        deployment_id=1,
        prompt_tokens=10,
        completion_tokens=5,
        cost=Decimal("0.000015"),
    )
    metrics.observe(outcome, upstream_seconds=0.01)  # first use creates the labelled children
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        metrics.observe(outcome, upstream_seconds=0.01)
    per_call = (time.perf_counter() - started) / n * 1e6

    print(f"metrics.observe: {per_call:.1f} µs per call")
    assert per_call < 30, per_call  # ~3 µs measured on a loaded 2-core box; generous for CI


def test_batched_observations_land_in_the_buckets_prometheus_would_use(db):
    """observe() adds to plain dicts and flush() hands them over: the result must be what
    Histogram.observe would have made of each value, bounds included (le is "≤")."""
    values = [0.005, 0.007, 0.3, 0.3, 1000.0]  # on a bound, between bounds, twice, past the last
    for i, seconds in enumerate(values):
        metrics.observe(
            Outcome(
                request_id=str(i),
                started_at=time.time(),
                endpoint="buckets",
                status=200,
                latency_ms=seconds * 1000,
                model="buckets",
            )
        )
    text = metrics.exposition()[0].decode()
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("model") == "buckets" and s.name.startswith("tollgate_request_latency_seconds")
    }

    assert samples[("tollgate_request_latency_seconds_bucket", "0.005")] == 1
    assert samples[("tollgate_request_latency_seconds_bucket", "0.01")] == 2
    assert samples[("tollgate_request_latency_seconds_bucket", "0.25")] == 2
    assert samples[("tollgate_request_latency_seconds_bucket", "0.5")] == 4
    assert samples[("tollgate_request_latency_seconds_bucket", "300.0")] == 4
    assert samples[("tollgate_request_latency_seconds_bucket", "+Inf")] == 5
    assert samples[("tollgate_request_latency_seconds_count", None)] == 5
    assert samples[("tollgate_request_latency_seconds_sum", None)] == pytest.approx(sum(values))

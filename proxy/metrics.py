"""Prometheus metrics: recorded in one place, where a request's usage row is written; served at /metrics.

`observe(outcome)` runs once per LLM request (proxy/calls.py: Call.settle, and `refused` for
requests turned away before any upstream call), from the same ledger.Outcome as the usage row,
so the metrics and the ledger cannot disagree about what happened. It only increments counters
and histograms; the labelled children are cached per label tuple so a request pays a few dict
lookup and the increments, not prometheus_client's label validation (measured in
tests/proxy/test_metrics.py).

Several gunicorn workers: prometheus_client's multiprocess mode. `runproxy` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory per server start; every worker writes its values
to files there, gunicorn's child_exit hook marks a dead worker's files, and a scrape of any
worker sums them all. Without that variable (tests, `manage.py runserver`) the values are this
process's own.

Deployment state is not recorded on the hot path: a scrape reads it (`_StateCollector`) — cooling
down now (shared through Redis when set, else this worker's view) and the last background health
check's verdict.
"""

import logging
import os
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from billing.ledger import Outcome

log = logging.getLogger(__name__)

# Seconds; an LLM answer takes from a few ms (a mock, a cache) to minutes (a long stream).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, float("inf"))

REQUESTS = Counter(
    "tollgate_requests",
    "LLM requests by the alias asked, the deployment that answered, the status and the endpoint.",
    ["model", "deployment", "status", "endpoint"],
)
LATENCY = Histogram(
    "tollgate_request_latency_seconds",
    "Time from the request's arrival to its settling (a stream: its end).",
    ["model", "endpoint"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM = Histogram(
    "tollgate_upstream_latency_seconds",
    "Time the answering attempt spent with the provider (a stream: until its end).",
    ["model", "deployment"],
    buckets=LATENCY_BUCKETS,
)
OVERHEAD = Histogram(
    "tollgate_overhead_latency_seconds",
    "Total minus upstream time: Tollgate's own work, failed attempts and backoff included.",
    ["model"],
    buckets=OVERHEAD_BUCKETS,
)
FIRST_TOKEN = Histogram(
    "tollgate_time_to_first_token_seconds",
    "Time from the request's arrival to the first streamed chunk.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter("tollgate_tokens", "Tokens by kind (prompt, completion).", ["model", "deployment", "kind"])
SPEND = Counter("tollgate_spend_usd", "Spend in USD, as the usage rows price it.", ["model", "deployment"])
ERRORS = Counter("tollgate_errors", "Failed requests by error type (the envelope's code).", ["model", "error_type"])
RETRIES = Counter("tollgate_retries", "Upstream attempts beyond the first (fallbacks included).", ["model"])
FALLBACKS = Counter("tollgate_fallbacks", "Requests answered (or last tried) by a fallback group.", ["model", "group"])

_children: dict[tuple, Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, cached: the label check and lock are paid once per label tuple."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


@dataclass(slots=True)
class _Series:
    """The children every request touches, for one (model, deployment, status, endpoint): one lookup."""

    requests: Any
    latency: Any
    upstream: Any
    overhead: Any
    first_token: Any
    prompt: Any
    completion: Any
    spend: Any


_series: dict[tuple[str, str, int, str], _Series] = {}


def _series_for(model: str, deployment: str, status: int, endpoint: str) -> _Series:
    key = (model, deployment, status, endpoint)
    series = _series.get(key)
    if series is None:
        series = _series[key] = _Series(
            requests=REQUESTS.labels(model, deployment, str(status), endpoint),
            latency=LATENCY.labels(model, endpoint),
            upstream=UPSTREAM.labels(model, deployment),
            overhead=OVERHEAD.labels(model),
            first_token=FIRST_TOKEN.labels(model),
            prompt=TOKENS.labels(model, deployment, "prompt"),
            completion=TOKENS.labels(model, deployment, "completion"),
            spend=SPEND.labels(model, deployment),
        )
    return series


def observe(outcome: Outcome, *, upstream_seconds: float | None = None) -> None:
    """Record one settled (or refused) request. Never raises: metrics must not fail a request."""
    try:
        _observe(outcome, upstream_seconds)
    except Exception:  # a metrics bug must cost a sample, not a request
        log.exception("metrics: could not record request %s", outcome.request_id)


def _observe(o: Outcome, upstream_seconds: float | None) -> None:
    model = o.model or "unknown"
    series = _series_for(model, "" if o.deployment_id is None else str(o.deployment_id), o.status, o.endpoint)
    total = o.latency_ms / 1000
    series.requests.inc()
    series.latency.observe(total)
    if upstream_seconds is not None:
        series.upstream.observe(upstream_seconds)
        series.overhead.observe(max(0.0, total - upstream_seconds))
    if o.time_to_first_token_ms is not None:
        series.first_token.observe(o.time_to_first_token_ms / 1000)
    if o.prompt_tokens:
        series.prompt.inc(o.prompt_tokens)
    if o.completion_tokens:
        series.completion.inc(o.completion_tokens)
    if o.cost:
        series.spend.inc(float(o.cost))
    # Rare: failures, retries and fallbacks.
    if o.error_type:
        _child(ERRORS, model, o.error_type).inc()
    if o.attempts > 1:
        _child(RETRIES, model).inc(o.attempts - 1)
    if o.model_group and o.model_group != o.model:
        _child(FALLBACKS, model, o.model_group).inc()


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: every worker's values when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_state_registry()), CONTENT_TYPE_LATEST


def _state_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StateCollector())
    return registry


class _StateCollector(Collector):
    """Each deployment's state, read at scrape time."""

    def collect(self):  # type: ignore[no-untyped-def]
        from proxy import deployment_state, health, router

        cooling = deployment_state.cooling()
        verdicts = health.last_report()
        cooldown = GaugeMetricFamily(
            "tollgate_deployment_cooldown", "1 while the deployment is cooling down.", labels=["model", "deployment"]
        )
        healthy = GaugeMetricFamily(
            "tollgate_deployment_healthy",
            "1 healthy, 0 unhealthy at the last background health check (absent before one).",
            labels=["model", "deployment"],
        )
        for group in router.groups():
            for route in group.routes:
                pk = route.deployment.pk
                labels = [group.alias, str(pk)]
                cooldown.add_metric(labels, 1.0 if pk in cooling else 0.0)
                if pk in verdicts:
                    healthy.add_metric(labels, 1.0 if verdicts[pk] else 0.0)
        yield cooldown
        yield healthy

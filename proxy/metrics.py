"""Prometheus metrics: recorded in one place, where a request's usage row is written; served at /metrics.

`observe(outcome)` runs once per LLM request (proxy/calls.py: Call.settle, and `refused` for
requests turned away before any upstream call), from the same ledger.Outcome as the usage row,
so the metrics and the ledger cannot disagree about what happened. It adds to plain dicts under
one lock (a few µs: tests/proxy/test_metrics.py measures it); `flush` hands the sums to
prometheus_client once a second and before every scrape.

Several gunicorn workers: prometheus_client's multiprocess mode. config/gunicorn.py gives
PROMETHEUS_MULTIPROC_DIR a clean directory per server start; every worker writes its values to
files there, the child_exit hook marks a dead worker's files, and a scrape of any worker sums
them all (another worker's values are at most FLUSH_SECONDS old). Without that variable (tests,
`manage.py runserver`) the values are this process's own.

Deployment state is not recorded on the hot path: a scrape reads it (`_StateCollector`) — cooling
down now (shared through Redis when set, else this worker's view) and the last background health
check's verdict.
"""

import logging
import os
import threading
from bisect import bisect_left
from collections import defaultdict
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

FLUSH_SECONDS = 1.0  # how stale another worker's values may be in a scrape


class _Pending:
    """Increments not yet handed to prometheus_client: plain numbers, added under one lock.

    prometheus_client pays a lock (and in multiprocess mode a pid check and an mmap write) per
    increment, ~2 µs each, a dozen per request. Adding to dicts here and handing over the sums
    once a second (`flush`) keeps a request's share to a few dict updates.
    """

    def __init__(self) -> None:
        self.counts: defaultdict[Any, float] = defaultdict(float)  # counter child → amount
        self.sums: defaultdict[Any, float] = defaultdict(float)  # histogram child → sum observed
        self.buckets: defaultdict[tuple[Any, int], int] = defaultdict(int)  # (histogram child, bucket) → count

    def observe(self, child: Any, bounds: tuple[float, ...], value: float) -> None:
        self.sums[child] += value
        self.buckets[(child, bisect_left(bounds, value))] += 1  # the first bucket whose bound ≥ value


_pending = _Pending()
_lock = threading.Lock()
_children: dict[tuple, Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, cached: the label check is paid once per label tuple."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe(outcome: Outcome, *, upstream_seconds: float | None = None) -> None:
    """Record one settled (or refused) request. Never raises: metrics must not fail a request."""
    try:
        _observe(outcome, upstream_seconds)
    except Exception:  # a metrics bug must cost a sample, not a request
        log.exception("metrics: could not record request %s", outcome.request_id)


class _Series:
    """The children a request touches, for one (model, deployment, status, endpoint): one lookup."""

    __slots__ = ("completion", "first_token", "latency", "overhead", "prompt", "requests", "spend", "upstream")

    def __init__(self, model: str, deployment: str, status: int, endpoint: str) -> None:
        self.requests = REQUESTS.labels(model, deployment, str(status), endpoint)
        self.latency = LATENCY.labels(model, endpoint)
        self.upstream = UPSTREAM.labels(model, deployment)
        self.overhead = OVERHEAD.labels(model)
        self.first_token = FIRST_TOKEN.labels(model)
        self.prompt = TOKENS.labels(model, deployment, "prompt")
        self.completion = TOKENS.labels(model, deployment, "completion")
        self.spend = SPEND.labels(model, deployment)


_series: dict[tuple[str, int | None, int, str], _Series] = {}


def _observe(o: Outcome, upstream_seconds: float | None) -> None:
    model = o.model or "unknown"
    key = (model, o.deployment_id, o.status, o.endpoint)
    series = _series.get(key)
    if series is None:
        deployment = "" if o.deployment_id is None else str(o.deployment_id)
        series = _series[key] = _Series(model, deployment, o.status, o.endpoint)
    total = o.latency_ms / 1000
    with _lock:
        p = _pending
        p.counts[series.requests] += 1
        p.observe(series.latency, LATENCY_BUCKETS, total)
        if upstream_seconds is not None:
            p.observe(series.upstream, LATENCY_BUCKETS, upstream_seconds)
            p.observe(series.overhead, OVERHEAD_BUCKETS, max(0.0, total - upstream_seconds))
        if o.time_to_first_token_ms is not None:
            p.observe(series.first_token, LATENCY_BUCKETS, o.time_to_first_token_ms / 1000)
        if o.prompt_tokens:
            p.counts[series.prompt] += o.prompt_tokens
        if o.completion_tokens:
            p.counts[series.completion] += o.completion_tokens
        if o.cost:
            p.counts[series.spend] += float(o.cost)
    # Rare: failures, retries, fallbacks.
    if o.error_type or o.attempts > 1 or (o.model_group and o.model_group != o.model):
        _observe_trouble(o, model)


def _observe_trouble(o: Outcome, model: str) -> None:
    with _lock:
        p = _pending
        if o.error_type:
            p.counts[_child(ERRORS, model, o.error_type)] += 1
        if o.attempts > 1:
            p.counts[_child(RETRIES, model)] += o.attempts - 1
        if o.model_group and o.model_group != o.model:
            p.counts[_child(FALLBACKS, model, o.model_group)] += 1


def flush() -> None:
    """Hand the pending increments to prometheus_client (in multiprocess mode: this worker's file)."""
    global _pending
    with _lock:
        batch, _pending = _pending, _Pending()
    for child, amount in batch.counts.items():
        child.inc(amount)
    # A histogram child has no public way to add many observations at once: its sum and
    # buckets are prometheus_client values (tests/proxy/test_metrics.py pins the result).
    for child, total in batch.sums.items():
        child._sum.inc(total)
    for (child, index), count in batch.buckets.items():
        child._buckets[index].inc(count)


def start_flusher() -> None:
    """Flush every FLUSH_SECONDS in a green thread of this gunicorn worker (config/gunicorn.py)."""
    import gevent

    def loop() -> None:
        while True:
            gevent.sleep(FLUSH_SECONDS)
            try:
                flush()
            except Exception:
                log.exception("metrics: flush failed; retried in %.0f s", FLUSH_SECONDS)

    gevent.spawn(loop)


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: every worker's values when multiprocess."""
    flush()  # this worker's own values are current; the others' are at most FLUSH_SECONDS old
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

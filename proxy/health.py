"""Model health: a real minimal call to every enabled deployment, in parallel, bounded in time.

`check` serves GET /health (LiteLLM's shape: healthy and unhealthy endpoints with their counts).
A chat deployment is asked "ping" for one token, an embeddings deployment embeds one word, a
text-completion one completes "ping"; a mock deployment is healthy without a call. Each probe
runs in its own thread (a green thread under gunicorn's gevent worker) with the deployment's
timeout capped at TOLLGATE_HEALTH_TIMEOUT, so one hung provider costs the report at most that.

`run_in_background` is the optional periodic check (`general_settings.background_health_checks`,
every `health_check_interval` seconds): it feeds the router, as LiteLLM's does — an unhealthy
deployment is left out (a cooldown until the next check), a healthy one is let back in.
No endpoint in a report carries a secret: never the api_key, and error texts are redacted.
"""

import copy
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from config.logredaction import redact
from proxy import catalog, crypto, deployment_state, providers, router
from proxy.router import Route

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 300.0  # LiteLLM's health_check_interval
LAST_RUN_KEY = "tg:health:last-run"
LAST_REPORT_KEY = "tg:health:last-report"  # {deployment id: healthy?}, for /metrics
PING = [{"role": "user", "content": "ping"}]


@dataclass(frozen=True)
class Probe:
    route: Route
    healthy: bool
    error: str = ""
    seconds: float = 0.0


def check(alias: str | None = None, *, timeout: float | None = None) -> dict[str, Any]:
    """Probe every enabled deployment (only `alias`'s when given); return LiteLLM's /health body."""
    routes = [r for group in router.groups() if alias in (None, group.alias) for r in group.routes]
    probes = probe_all(routes, timeout=settings.TOLLGATE_HEALTH_TIMEOUT if timeout is None else timeout)
    healthy = [endpoint(p) for p in probes if p.healthy]
    unhealthy = [endpoint(p) for p in probes if not p.healthy]
    return {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
    }


def probe_all(routes: list[Route], *, timeout: float) -> list[Probe]:
    """Probe `routes` in parallel; one that has not answered within `timeout` is unhealthy."""
    if not routes:
        return []
    pool = ThreadPoolExecutor(max_workers=min(32, len(routes)), thread_name_prefix="health")
    futures = [pool.submit(_probe_in_thread, route, timeout) for route in routes]
    wait(futures, timeout=timeout + 1.0)  # each probe's own timeout fires first; this bounds the rest
    pool.shutdown(wait=False, cancel_futures=True)
    return [
        f.result() if f.done() else Probe(route, False, f"no answer within {timeout:g}s")
        for f, route in zip(futures, routes, strict=True)
    ]


def _probe_in_thread(route: Route, timeout: float) -> Probe:
    try:
        return probe(route, timeout)
    finally:
        connection.close()  # a provider's credential lookup may have opened one in this thread


def probe(route: Route, timeout: float) -> Probe:
    """Make the smallest real call `route`'s deployment answers, its timeouts capped; never raises.

    Also what the admin's "test connection" makes (proxy/connection.py).
    """
    deployment = route.deployment
    if deployment.mock_response:
        return Probe(route, True)
    started = time.monotonic()
    bounded = copy.copy(deployment)  # the router's row is shared: cap the timeouts on a copy
    bounded.timeout = min(deployment.timeout or timeout, timeout)
    bounded.stream_timeout = min(deployment.stream_timeout or timeout, timeout)
    environment = route.adapter.environment
    try:
        adapter = providers.adapter_for(bounded, environment)
        mode = catalog.deployment_mode(deployment)
        if mode == "embedding":
            adapter.embeddings({"model": deployment.model_name, "input": "ping"})
        elif mode == "completion":
            adapter.text_completion({"model": deployment.model_name, "prompt": "ping", "max_tokens": 1})
        else:
            adapter.chat({"model": deployment.model_name, "messages": PING, "max_tokens": 1})
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        return Probe(route, False, masked(error, deployment, environment), time.monotonic() - started)
    return Probe(route, True, seconds=time.monotonic() - started)


def endpoint(p: Probe) -> dict[str, Any]:
    """One entry of the report: what identifies the deployment, never a secret."""
    d = p.route.deployment
    entry: dict[str, Any] = {
        "model": d.litellm_model,
        "model_name": d.model_name,
        "api_base": _public_url(d.api_base),
        "model_id": d.config_id or str(d.pk),
        "deployment_id": d.pk,
    }
    if d.api_version:
        entry["api_version"] = d.api_version
    if not p.healthy:
        entry["error"] = p.error
    return entry


# --- background checks --------------------------------------------------------------------------


def run_in_background() -> int | None:
    """The periodic job: when the config asks for background checks and one is due, run it and
    feed the router; return how many deployments were unhealthy (None: nothing was due).

    Scheduled often (config/celery.py); `health_check_interval` decides. The due check is an
    atomic cache add, so with Redis one process in the installation runs each round, and its
    cooldowns are shared; without Redis each worker runs its own, as its cooldowns are its own.
    """
    table = router.table()
    general = table.general_settings
    if not general.get("background_health_checks"):
        return None
    interval = _interval(general.get("health_check_interval"))
    due_key = f"{LAST_RUN_KEY}:{settings.DATABASES['default']['NAME']}"  # one installation's round
    if not cache.add(due_key, time.time(), timeout=max(1, int(interval))):
        return None
    routes = [r for group in table.groups.values() for r in group.routes]
    probes = probe_all(routes, timeout=settings.TOLLGATE_HEALTH_TIMEOUT)
    feed_router(probes, table, cooldown=interval)
    return sum(not p.healthy for p in probes)


def feed_router(probes: list[Probe], table: router.Table, *, cooldown: float) -> None:
    """Leave unhealthy deployments out until the next check; let healthy ones back in.

    A group's only deployment is never left out (as with failures, proxy/attempts.py): refusing
    every call to it helps no one, and a call might still succeed.
    """
    sizes = {alias: len(group.routes) for alias, group in table.groups.items()}
    for p in probes:
        pk = p.route.deployment.pk
        if p.healthy:
            deployment_state.lift_cooldown(pk)
        elif sizes.get(p.route.deployment.model_name, 0) > 1:
            log.warning("deployment %s unhealthy (%s): left out for %.0f s", pk, p.error, cooldown)
            deployment_state.cool_down(pk, cooldown)
    cache.set(LAST_REPORT_KEY, {p.route.deployment.pk: p.healthy for p in probes}, timeout=None)


def last_report() -> dict[int, bool]:
    """The last background check's verdict per deployment id (empty before the first)."""
    return cache.get(LAST_REPORT_KEY) or {}


def _interval(value: Any) -> float:
    try:
        return max(1.0, float(value)) if value not in (None, "") else DEFAULT_INTERVAL
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL


def _public_url(url: str) -> str:
    """The api_base without user info or query string, where a secret could hide."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def masked(text: str, deployment: Any, environment: dict[str, str]) -> str:
    """An error text without the deployment's own secrets (resolved, in case a provider echoes one)
    and without anything shaped like a key."""
    for stored in [deployment.api_key, *(deployment.credentials or {}).values()]:
        try:
            plain = crypto.resolve(str(stored), environment) if stored else ""
        except crypto.SecretUnavailable:
            continue
        if len(plain) >= 4:
            text = text.replace(plain, "********")
    return redact(text)[:500]

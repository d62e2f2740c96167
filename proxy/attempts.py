"""Retries and fallbacks: one call's attempts, all made before its first byte reaches the caller.

The loop, as LiteLLM's router runs it (docs/router.md):
1. In the asked group, pick a deployment (proxy/router.py: available ones, lowest tier, by
   strategy) and call it. A failure that is worth retrying — the connection, a timeout, 429, 5xx,
   refused credentials — counts against that deployment (proxy/deployment_state.py: past
   `allowed_fails` a minute it cools down) and, while `num_retries` allow, the call is made again
   after a backoff, on a deployment not yet tried when the group has one.
2. When the group is exhausted, the fallback groups for that kind of failure are tried in order,
   each the same way: `context_window_fallbacks` for a prompt too long, `content_policy_fallbacks`
   for a refusal on content, `fallbacks` (the config's, then the request's own) otherwise.
3. A failure the caller caused (any other 4xx) is final at once: another deployment would refuse
   the same request.

A stream is opened and its first chunk read inside the attempt, so a stream that fails before
any byte is retried too; once a chunk is relayed, nothing is retried.
"""

import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from proxy import deployment_state
from proxy.exceptions import (
    NoDeploymentAvailable,
    ProviderMisconfigured,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from proxy.policy import Policy
from proxy.providers.base import Adapter, Body

if TYPE_CHECKING:
    from proxy.calls import Call
    from proxy.router import ModelGroup

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_BACKOFF = 0.25  # seconds before the first retry, doubled each time, with jitter
MAX_BACKOFF = 10.0
MAX_RETRY_AFTER = 30.0  # a provider asking for a longer wait is not waited for: the next deployment is tried
CONTEXT_WINDOW = re.compile(
    r"context (length|window)|too many tokens|maximum (context|prompt)|prompt is too long", re.I
)
CONTENT_POLICY = re.compile(r"content[ _](policy|filter|management)|safety|responsible ai", re.I)


@dataclass(frozen=True)
class Plan:
    """The asked group and every group this call may fall back to, by kind of failure."""

    group: "ModelGroup"
    rules: Policy
    fallbacks: dict[str, tuple["ModelGroup", ...]]  # failure kind ("", "context_window", "content_policy") → groups

    def all_groups(self) -> list["ModelGroup"]:
        """Every group an attempt may go to: admission reserves against the dearest of them."""
        seen = {self.group.alias: self.group}
        for groups in self.fallbacks.values():
            seen.update((g.alias, g) for g in groups)
        return list(seen.values())


def run(call: "Call", operation: Callable[[Adapter], T]) -> T:
    """Call the provider for `call` with retries and fallbacks; the last failure is raised."""
    try:
        return _in_group(call, call.plan.group, operation)
    except Exception as first:
        kind = classify(first)
        if kind == "caller":
            raise
        failure: Exception = first
        for group in call.plan.fallbacks.get(kind) or call.plan.fallbacks.get("", ()):
            if group.alias == call.plan.group.alias:
                continue
            log.info("request=%s falls back from %s to %s (%s)", call.request_id, call.alias, group.alias, kind)
            try:
                return _in_group(call, group, operation)
            except Exception as e:
                if classify(e) == "caller":
                    raise
                failure = e
        raise failure from None


def open_stream(call: "Call", operation: Callable[[Adapter], Iterator[Body]]) -> Iterator[Body]:
    """Open a stream with retries and fallbacks; it is not retried once its first chunk is read."""
    return run(call, lambda adapter: Primed(operation(adapter)))


def _in_group(call: "Call", group: "ModelGroup", operation: Callable[[Adapter], T]) -> T:
    rules = call.plan.rules
    tried: set[int] = set()
    for attempt in range(rules.num_retries + 1):
        route = group.pick(rules.strategy, tried=frozenset(tried))
        pk = route.deployment.pk
        tried.add(pk)
        call.attempting(group.alias, route)
        started = time.monotonic()
        try:
            result = operation(route.adapter)
        except Exception as e:
            call.attempt_failed()
            kind = classify(e)
            if kind not in ("retry", "deployment"):
                raise
            if rules.cooldowns and len(group.routes) > 1:  # cooling a group's only deployment helps no one
                deployment_state.failed(
                    pk,
                    allowed_fails=rules.allowed_fails,
                    cooldown_time=rules.cooldown_time,
                    immediately=kind == "deployment" or _wait_asked(e) > MAX_RETRY_AFTER,
                )
            wait = _backoff(attempt, e, rules)
            if attempt == rules.num_retries:
                raise
            if wait is None:  # too long to wait for this deployment; another of the group may answer now
                if not any(r.deployment.pk not in tried and r.available() for r in group.routes):
                    raise
                wait = 0.0
            log.info(
                "request=%s attempt %d on deployment %s failed (%s); retrying", call.request_id, attempt + 1, pk, e
            )
            time.sleep(wait)
            continue
        elapsed = time.monotonic() - started
        deployment_state.observe_latency(pk, elapsed)
        call.answered(started, elapsed)
        return result
    raise AssertionError("unreachable: the last attempt returns or raises")


def classify(error: Exception) -> str:
    """How a failed attempt failed: what may be tried next.

    "retry": the deployment or the network failed (connection, timeout, 408, 429, 5xx);
    "deployment": this deployment cannot serve at all (refused credentials, misconfigured, none
    available) — others may; "context_window" / "content_policy": the provider refused this
    prompt for its size or content — a group with a bigger window or other rules may take it;
    "caller": anything else the caller caused — final.
    """
    if isinstance(error, UpstreamTimeout | UpstreamUnavailable):
        return "retry"
    if isinstance(error, NoDeploymentAvailable | ProviderMisconfigured):
        return "deployment"
    if isinstance(error, UpstreamError):
        if error.status in (408, 429) or error.status >= 500:
            return "retry"
        if error.status in (401, 403):
            return "deployment"
        said = f"{error.code or ''} {error.message}"
        if CONTEXT_WINDOW.search(said):
            return "context_window"
        if CONTENT_POLICY.search(said):
            return "content_policy"
    return "caller"


def _backoff(attempt: int, error: Exception, rules: Policy) -> float | None:
    """Seconds to wait before the next attempt: the provider's Retry-After when it gives one (None
    when that is too long to wait for), else an exponential backoff with jitter; at least
    the config's `retry_after`."""
    asked = _wait_asked(error)
    if asked > MAX_RETRY_AFTER:
        return None
    if asked:
        return max(asked, rules.retry_after)
    exponential = min(MAX_BACKOFF, FIRST_BACKOFF * 2**attempt)
    return max(rules.retry_after, exponential * random.uniform(0.75, 1.25))


def _wait_asked(error: Exception) -> float:
    value = getattr(error, "retry_after", None)
    try:
        return max(0.0, float(value)) if value not in (None, "") else 0.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0  # an HTTP date: not worth parsing, the backoff applies


class Primed:
    """A stream whose first chunk was read already (so a failure to start is still retryable).

    Keeps the upstream iterator's `close`, which the relay calls to release the connection.
    """

    def __init__(self, chunks: Iterator[Body]) -> None:
        self._chunks = chunks
        self._first: list[Body] = []
        with contextlib.suppress(StopIteration):  # an empty stream: nothing to relay
            self._first.append(next(chunks))

    def __iter__(self) -> "Primed":
        return self

    def __next__(self) -> Body:
        if self._first:
            return self._first.pop()
        return next(self._chunks)

    def close(self) -> None:
        close: Any = getattr(self._chunks, "close", None)
        if close is not None:
            close()

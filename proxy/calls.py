"""One call in flight: admitted against the caller's limits, routed, and settled exactly once.

`begin` is steps 2 and 3 of the hot path (DESIGN.md §1): resolve the alias and its fallbacks,
reserve the worst-case cost and tokens (tenants/limits.py). `run`/`open_stream` make the attempts
(proxy/attempts.py: deployment picks, retries, fallbacks). From then on the Call owns the
reservation: `settle` commits what the answer really cost and releases the rest, whether the
call succeeded, failed before any byte (`guard`), or was cut short mid-stream.
"""

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict, TypeVar

import orjson
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from billing import ledger, pricebook
from config import database
from proxy import attempts, deployment_state, errors, metrics, policy, router
from proxy.exceptions import ProxyError
from proxy.models import Deployment
from proxy.providers.base import Adapter, Body, Usage
from proxy.router import Route
from tenants import limits
from tenants.auth import Caller
from tenants.exceptions import TenantError
from tenants.limits import Reservation

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Call:
    """Who asked, what for, where it went, what was set aside for it, and when it started."""

    request_id: str
    caller: Caller
    endpoint: str
    alias: str
    reservation: Reservation
    body: Body
    plan: attempts.Plan
    stream: bool = False
    route: Route | None = None  # the deployment of the current (at the end: the last) attempt
    model_group: str = ""  # the group that route belongs to: the asked one, or a fallback
    price: pricebook.Price | None = None  # as the attempt started: a price change applies to the next call
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)
    cost: Decimal | None = None
    settled: bool = False
    in_flight: int | None = None  # the deployment this call counts as busy on (least-busy routing)
    upstream_started: float | None = None  # when the answering attempt started (monotonic)
    upstream_seconds: float | None = None  # how long it took to answer (a stream: to its first chunk)

    @property
    def deployment(self) -> Deployment | None:
        return self.route.deployment if self.route else None

    def run(self, operation: Callable[[Adapter], T]) -> T:
        """Call the provider, with the config's retries and fallbacks (proxy/attempts.py)."""
        return attempts.run(self, operation)

    def open_stream(self, operation: Callable[[Adapter], Iterator[Body]]) -> Iterator[Body]:
        """Open a stream, with retries and fallbacks until its first chunk is read."""
        return attempts.open_stream(self, operation)

    def attempting(self, group: str, route: Route) -> None:
        """An attempt starts on `route` (of group `group`): it is this call's deployment from now on."""
        self.route, self.model_group, self.attempts = route, group, self.attempts + 1
        self.price = pricebook.price(route.deployment)
        self.in_flight = route.deployment.pk
        deployment_state.started(route.deployment.pk)
        if route.deployment.rpm is not None:
            deployment_state.count_use(route.deployment.pk, requests=1)

    def attempt_failed(self) -> None:
        self._not_busy()

    def _not_busy(self) -> None:
        if self.in_flight is not None:
            deployment_state.finished(self.in_flight)
            self.in_flight = None

    def settle(
        self,
        *,
        status: int,
        usage: Usage | None,
        first_token_at: float | None = None,
        error: Exception | None = None,
        generated: list[str] | None = None,
    ) -> None:
        """Price the finished call, commit it against the caller's budgets and write its usage row. Runs once.

        `generated` is the text a stream relayed: when the provider reported no usage (the caller
        went away, the stream broke), the tokens are counted from it and the row says so.
        """
        if self.settled:
            return
        self.settled = True
        ended = time.monotonic()  # one instant for the total and the upstream time: overhead ≥ 0
        self._not_busy()
        deployment = self.deployment
        estimated = usage is None and bool(generated) and deployment is not None
        if estimated:
            usage = self._estimate("".join(generated or ()))
        usage = usage or Usage()
        price = self.price
        self.cost = price.charge(usage.prompt_tokens, usage.completion_tokens) if price else Decimal(0)
        outcome = ledger.Outcome(
            **who(self.caller, self.body),
            request_id=self.request_id,
            started_at=self.started_at,
            endpoint=self.endpoint,
            status=status,
            latency_ms=(ended - self.started) * 1000,
            time_to_first_token_ms=None if first_token_at is None else (first_token_at - self.started) * 1000,
            model=self.alias,
            model_group=self.model_group,
            attempts=self.attempts,
            deployment_id=deployment.pk if deployment else None,
            provider=deployment.provider if deployment else "",
            provider_model=deployment.provider_model if deployment else "",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            tokens_estimated=estimated,
            cost=self.cost,
            input_cost_per_token=price.input if price else None,
            output_cost_per_token=price.output if price else None,
            price_source=price.source if price else "",
            stream=self.stream,
            error_type=errors.code_of(error) if error else "",
        )
        limits.settle(
            self.reservation,
            cost=self.cost,
            tokens=usage.total_tokens,
            record=lambda charged: ledger.record(outcome, charged),
        )
        if deployment is not None and usage.total_tokens and (deployment.tpm or self.plan.rules.counts_tokens):
            deployment_state.count_use(deployment.pk, tokens=usage.total_tokens)
        metrics.observe(outcome, upstream_seconds=self._upstream_time(ended))

    def answered(self, started: float, seconds: float) -> None:
        """The attempt that started at `started` (monotonic) answered after `seconds`."""
        self.upstream_started, self.upstream_seconds = started, seconds

    def _upstream_time(self, ended: float) -> float | None:
        """The answering attempt's time with the provider: a stream's lasts until `ended`, its end."""
        if self.upstream_started is None:
            return None
        return ended - self.upstream_started if self.stream else self.upstream_seconds

    def _estimate(self, generated: str) -> Usage:
        """Count the tokens of the prompt and of what was relayed; never fails (the row matters more)."""
        assert self.deployment is not None  # only a call that reached a deployment relayed anything
        provider, model = self.deployment.provider, self.deployment.provider_model
        try:
            from billing import tokens  # loads a tokenizer on first use: only this rare path pays for it

            prompt = tokens.estimate_prompt(provider, model, self.body)
            completion = tokens.estimate_text(provider, model, generated)
        except Exception as e:
            log.warning("request=%s token estimate failed (%s): counting bytes", self.request_id, type(e).__name__)
            prompt = -(-len(orjson.dumps(self.body.get("messages") or self.body.get("prompt") or "")) // 4)
            completion = -(-len(generated.encode()) // 4)
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Settle a call whose provider failed before answering (nothing used, reservation released)."""
        try:
            yield
        except Exception as e:
            self.settle(status=errors.status_of(e), usage=None, error=e)
            raise

    def headers(self, response: HttpResponseBase) -> None:
        if self.deployment is not None:
            response["x-tollgate-deployment"] = str(self.deployment.pk)
        if self.attempts > 1:
            response["x-tollgate-attempts"] = str(self.attempts)
        if self.model_group and self.model_group != self.alias:
            response["x-tollgate-fallback"] = self.model_group
        if self.cost is not None and not self.stream:
            response["x-tollgate-cost"] = f"{self.cost:f}"
        if self.reservation.remaining_requests is not None:
            response["x-ratelimit-remaining-requests"] = str(self.reservation.remaining_requests)
        if self.reservation.remaining_tokens is not None:
            response["x-ratelimit-remaining-tokens"] = str(self.reservation.remaining_tokens)
        if self.reservation.over_soft_budget:
            response["x-tollgate-soft-budget-exceeded"] = ", ".join(self.reservation.over_soft_budget)


def begin(request: HttpRequest, caller: Caller, body: Body, *, endpoint: str) -> Call:
    """Resolve and admit one request; 403/404/429 here means no upstream call was made.

    The reservation covers the dearest group the call may reach: the asked one or a fallback.
    """
    deployments = router.table()
    rules = deployments.rules or policy.read({}, {})
    group = router.resolve(body["model"], caller, within=deployments)
    plan = attempts.Plan(group, rules, _fallbacks(group.alias, rules, body, caller, deployments))
    size = getattr(request, "body_bytes", 0)
    ceilings = [pricebook.max_cost(g, body, prompt_bytes=size) for g in plan.all_groups()]
    ceiling = None if None in ceilings else max(c for c in ceilings if c is not None)
    tokens = max(pricebook.max_tokens(g, body, prompt_bytes=size) for g in plan.all_groups())
    reservation = limits.admit(caller, cost=ceiling, tokens=tokens)
    call = Call(
        request_id=request.request_id,  # type: ignore[attr-defined]
        caller=caller,
        endpoint=endpoint,
        alias=group.alias,
        reservation=reservation,
        body=body,
        plan=plan,
        stream=bool(body.get("stream")),
    )
    request.tollgate_call = call  # type: ignore[attr-defined]  # the view's error path sees it was recorded
    return call


def _fallbacks(
    alias: str, rules: policy.Policy, body: Body, caller: Caller, deployments: router.Table
) -> dict[str, tuple[router.ModelGroup, ...]]:
    """The groups this call may fall back to, per kind of failure: the config's, then the request's own
    (`fallbacks` in the body, taken out of it: providers do not know the field). Groups the caller may
    not use, or that do not exist, are left out."""
    asked = policy.request_fallbacks(body.pop("fallbacks", None))
    names = {
        "": rules.fallbacks_for(alias) + asked,
        "context_window": rules.fallbacks_for(alias, "context_window") + asked,
        "content_policy": rules.fallbacks_for(alias, "content_policy") + asked,
    }
    for extra in ("context_window_fallbacks", "content_policy_fallbacks", "num_retries"):
        body.pop(extra, None)
    groups: dict[str, tuple[router.ModelGroup, ...]] = {}
    for kind, aliases in names.items():
        found = []
        for name in dict.fromkeys(aliases):
            try:
                found.append(router.resolve(name, caller, within=deployments))
            except (ProxyError, TenantError):
                log.info("fallback %r of %r left out: unknown, or not allowed for this key", name, alias)
        groups[kind] = tuple(found)
    return groups


def refused(request: HttpRequest, caller: Caller | None, error: Exception, *, endpoint: str, started_at: float) -> None:
    """Write the usage row of a request that failed before it became a Call: zero cost, its status.

    Bad key, bad body, unknown or forbidden model, a limit or budget: the caller got an error and
    no provider was called. Never raises: the caller's error matters more than this row.
    """
    call = getattr(request, "tollgate_call", None)
    if call is not None and call.settled:
        return
    body = getattr(request, "json_body", None)
    body = body if isinstance(body, dict) else {}
    model = body.get("model")
    outcome = ledger.Outcome(
        **who(caller, body),
        request_id=request.request_id,  # type: ignore[attr-defined]
        started_at=started_at,
        endpoint=endpoint,
        status=errors.status_of(error),
        latency_ms=(time.time() - started_at) * 1000,
        model=model[:255] if isinstance(model, str) else "",
        stream=body.get("stream") is True,
        error_type=errors.code_of(error),
    )
    try:
        with database.write_lock():
            ledger.record(outcome)
    except Exception as e:  # the database is down: the error response still goes out
        log.warning("request=%s could not be recorded: %s", outcome.request_id, type(e).__name__)
    metrics.observe(outcome)


class Who(TypedDict):
    key_hash: str
    key_id: int | None
    key_name: str
    team_id: str
    user_id: str
    end_user: str


def who(caller: Caller | None, body: Body) -> Who:
    """The ledger's tenant columns for `caller`, and the end user the body names (OpenAI's `user`)."""
    key = caller.key if caller is not None else None
    end_user = body.get("user")
    return Who(
        key_hash=key.token if key else "",
        key_id=key.pk if key else None,
        key_name=caller.hint if caller is not None else "",
        team_id=(key.team_id or "") if key else "",
        user_id=(key.user_id or "") if key else "",
        end_user=end_user[:255] if isinstance(end_user, str) else "",
    )

"""One call in flight: admitted against the caller's limits, routed, and settled exactly once.

`begin` is steps 2 and 3 of the hot path (DESIGN.md §1): resolve the alias, reserve the worst-case
cost and tokens (tenants/limits.py), pick a deployment. From then on the Call owns the
reservation: `settle` commits what the answer really cost and releases the rest, whether the
call succeeded, failed before any byte (`guard`), or was cut short mid-stream.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from billing import ledger, pricebook
from proxy import errors, router
from proxy.models import Deployment
from proxy.providers.base import Body, Usage
from proxy.router import Route
from tenants import limits
from tenants.auth import Caller
from tenants.limits import Reservation


@dataclass
class Call:
    """Who asked, what for, where it went, what was set aside for it, and when it started."""

    request_id: str
    caller: Caller
    endpoint: str
    alias: str
    deployment: Deployment
    reservation: Reservation
    stream: bool = False
    started: float = field(default_factory=time.monotonic)
    cost: Decimal | None = None
    settled: bool = False

    def settle(
        self, *, status: int, usage: Usage | None, first_token_at: float | None = None, error: Exception | None = None
    ) -> None:
        """Record the finished call and commit its cost against the caller's budgets. Runs once."""
        if self.settled:
            return
        self.settled = True
        usage = usage or Usage()
        self.cost, _price = pricebook.cost(self.deployment, usage.prompt_tokens, usage.completion_tokens)
        limits.settle(self.reservation, cost=self.cost, tokens=usage.total_tokens)
        now = time.monotonic()
        ledger.settle(
            ledger.Outcome(
                request_id=self.request_id,
                caller_hint=self.caller.hint,
                endpoint=self.endpoint,
                alias=self.alias,
                deployment_id=self.deployment.pk,
                provider=self.deployment.provider,
                provider_model=self.deployment.provider_model,
                stream=self.stream,
                status=status,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                latency_ms=(now - self.started) * 1000,
                time_to_first_token_ms=None if first_token_at is None else (first_token_at - self.started) * 1000,
                error_type=type(error).__name__ if error else "",
            )
        )

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Settle a call whose provider failed before answering (nothing used, reservation released)."""
        try:
            yield
        except Exception as e:
            self.settle(status=errors.describe(e)[0], usage=None, error=e)
            raise

    def headers(self, response: HttpResponseBase) -> None:
        response["x-tollgate-deployment"] = str(self.deployment.pk)
        if self.cost is not None and not self.stream:
            response["x-tollgate-cost"] = f"{self.cost:f}"
        if self.reservation.remaining_requests is not None:
            response["x-ratelimit-remaining-requests"] = str(self.reservation.remaining_requests)
        if self.reservation.remaining_tokens is not None:
            response["x-ratelimit-remaining-tokens"] = str(self.reservation.remaining_tokens)
        if self.reservation.over_soft_budget:
            response["x-tollgate-soft-budget-exceeded"] = ", ".join(self.reservation.over_soft_budget)


def begin(request: HttpRequest, caller: Caller, body: Body, *, endpoint: str) -> tuple[Route, Call]:
    """Resolve, admit and route one request; 403/404/429 here means no upstream call was made."""
    group = router.resolve(body["model"], caller)
    size = getattr(request, "body_bytes", 0)
    ceiling = pricebook.max_cost(group, body, prompt_bytes=size)
    reservation = limits.admit(caller, cost=ceiling, tokens=pricebook.max_tokens(group, body, prompt_bytes=size))
    route = group.pick()
    call = Call(
        request_id=request.request_id,  # type: ignore[attr-defined]
        caller=caller,
        endpoint=endpoint,
        alias=group.alias,
        deployment=route.deployment,
        reservation=reservation,
        stream=bool(body.get("stream")),
    )
    return route, call

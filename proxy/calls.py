"""One call in flight: admitted against the caller's limits, routed, and settled exactly once.

`begin` is steps 2 and 3 of the hot path (DESIGN.md §1): resolve the alias, reserve the worst-case
cost and tokens (tenants/limits.py), pick a deployment. From then on the Call owns the
reservation: `settle` commits what the answer really cost and releases the rest, whether the
call succeeded, failed before any byte (`guard`), or was cut short mid-stream.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict

import orjson
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from billing import ledger, pricebook
from config import database
from proxy import errors, router
from proxy.models import Deployment
from proxy.providers.base import Body, Usage
from proxy.router import Route
from tenants import limits
from tenants.auth import Caller
from tenants.limits import Reservation

log = logging.getLogger(__name__)


@dataclass
class Call:
    """Who asked, what for, where it went, what was set aside for it, and when it started."""

    request_id: str
    caller: Caller
    endpoint: str
    alias: str
    deployment: Deployment
    reservation: Reservation
    body: Body
    price: pricebook.Price | None  # as the call started: a price change mid-call applies to the next one
    stream: bool = False
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)
    cost: Decimal | None = None
    settled: bool = False

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
        estimated = usage is None and bool(generated)
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
            latency_ms=(time.monotonic() - self.started) * 1000,
            time_to_first_token_ms=None if first_token_at is None else (first_token_at - self.started) * 1000,
            model=self.alias,
            deployment_id=self.deployment.pk,
            provider=self.deployment.provider,
            provider_model=self.deployment.provider_model,
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

    def _estimate(self, generated: str) -> Usage:
        """Count the tokens of the prompt and of what was relayed; never fails (the row matters more)."""
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
        body=body,
        price=pricebook.price(route.deployment),
        stream=bool(body.get("stream")),
    )
    request.tollgate_call = call  # type: ignore[attr-defined]  # the view's error path sees it was recorded
    return route, call


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


class Who(TypedDict):
    key_hash: str
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
        key_name=caller.hint if caller is not None else "",
        team_id=(key.team_id or "") if key else "",
        user_id=(key.user_id or "") if key else "",
        end_user=end_user[:255] if isinstance(end_user, str) else "",
    )

"""Settle a finished call: what it used, what it cost, how it ended.

For now each settled call is one structured log line (request id, key hint, alias, deployment,
tokens, latency, status) — never a key or prompt text. The usage ledger issue turns this into
one durable usage row per request, written here before the stream's [DONE].
"""

import logging
from dataclasses import dataclass

log = logging.getLogger("tollgate.usage")


@dataclass
class Outcome:
    request_id: str
    caller_hint: str
    endpoint: str
    alias: str
    deployment_id: int | None
    provider: str
    provider_model: str
    stream: bool
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    error_type: str = ""


def settle(outcome: Outcome) -> None:
    """Record a finished call. Must be cheap: it runs before the stream's [DONE] is sent."""
    log.info(
        "request=%s key=%s endpoint=%s model=%s deployment=%s provider=%s/%s stream=%s status=%s "
        "prompt_tokens=%d completion_tokens=%d latency_ms=%.1f ttft_ms=%s error=%s",
        outcome.request_id,
        outcome.caller_hint,
        outcome.endpoint,
        outcome.alias,
        outcome.deployment_id,
        outcome.provider,
        outcome.provider_model,
        outcome.stream,
        outcome.status,
        outcome.prompt_tokens,
        outcome.completion_tokens,
        outcome.latency_ms,
        "-" if outcome.time_to_first_token_ms is None else f"{outcome.time_to_first_token_ms:.1f}",
        outcome.error_type or "-",
    )

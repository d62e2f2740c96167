"""One usage row as LiteLLM's spend log (`LiteLLM_SpendLogs`) shows it, plus what Tollgate adds.

LiteLLM clients read the camelCase time fields, `api_key` as the key's SHA-256 digest, `model` as
the provider's model and `model_group` as the alias called. Columns Tollgate does not keep
(prompts, responses, cache keys, tags) are present and empty, so their parsers find them.
The key itself is never in a row: only its digest (`api_key`) and its hint (`key_name`).
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from billing.models import UsageRecord

# LiteLLM's call types for the endpoints Tollgate serves.
CALL_TYPES = {
    "chat": "acompletion",
    "completions": "atext_completion",
    "fim": "atext_completion",
    "embeddings": "aembedding",
}


def succeeded(row: UsageRecord) -> bool:
    return 200 <= row.status < 400


def completion_start(row: UsageRecord) -> dt.datetime:
    """When the first token came back: LiteLLM's `completionStartTime` (the end, if unknown)."""
    if row.time_to_first_token_ms is None:
        return row.ended_at
    return row.started_at + dt.timedelta(milliseconds=row.time_to_first_token_ms)


def number(value: Any) -> float | None:
    return None if value is None else float(value)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def as_log(row: UsageRecord) -> dict[str, Any]:
    """The JSON row of /spend/logs."""
    status = "success" if succeeded(row) else "failure"
    metadata: dict[str, Any] = {
        "user_api_key": row.key_hash,
        "user_api_key_name": row.key_name or None,
        "user_api_key_team_id": row.team_id or None,
        "user_api_key_user_id": row.user_id or None,
        "user_api_key_end_user_id": row.end_user or None,
        "status": status,
    }
    if not succeeded(row):
        metadata["error_information"] = {"error_code": str(row.status), "error_class": row.error_type or None}
    return {
        "request_id": row.request_id,
        "call_type": CALL_TYPES.get(row.endpoint, row.endpoint),
        "api_key": row.key_hash,
        "spend": float(row.cost),
        "total_tokens": row.total_tokens,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "startTime": iso(row.started_at),
        "endTime": iso(row.ended_at),
        "completionStartTime": iso(completion_start(row)),
        "request_duration_ms": round(row.latency_ms),
        "model": row.provider_model or row.model,
        "model_id": "" if row.deployment_id is None else str(row.deployment_id),
        "model_group": row.model,
        "custom_llm_provider": row.provider,
        "api_base": "",
        "user": row.user_id,
        "end_user": row.end_user,
        "team_id": row.team_id or None,
        "organization_id": None,
        "metadata": metadata,
        "cache_hit": "False",
        "cache_key": "",
        "request_tags": [],
        "requester_ip_address": "",
        "messages": {},
        "response": {},
        "proxy_server_request": {},
        "session_id": None,
        "status": status,
        "mcp_namespaced_tool_name": None,
        "agent_id": None,
        # Tollgate's own fields.
        "key_name": row.key_name,
        "endpoint": row.endpoint,
        "stream": row.stream,
        "status_code": row.status,
        "error_type": row.error_type or None,
        "latency_ms": row.latency_ms,
        "time_to_first_token_ms": row.time_to_first_token_ms,
        "tokens_estimated": row.tokens_estimated,
        "input_cost_per_token": number(row.input_cost_per_token),
        "output_cost_per_token": number(row.output_cost_per_token),
        "price_source": row.price_source,
    }


# The CSV export: the flat columns of a row (no JSON objects), in this order.
CSV_COLUMNS = [
    "request_id",
    "call_type",
    "api_key",
    "key_name",
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "tokens_estimated",
    "startTime",
    "endTime",
    "completionStartTime",
    "latency_ms",
    "time_to_first_token_ms",
    "model",
    "model_group",
    "model_id",
    "custom_llm_provider",
    "user",
    "end_user",
    "team_id",
    "status",
    "status_code",
    "error_type",
    "endpoint",
    "stream",
    "input_cost_per_token",
    "output_cost_per_token",
    "price_source",
]


def as_csv(rows: Iterable[UsageRecord]) -> Iterator[list[Any]]:
    """CSV cells of each row; money as exact decimals, not floats."""
    for row in rows:
        shaped = as_log(row)
        shaped["spend"] = row.cost
        shaped["input_cost_per_token"] = row.input_cost_per_token
        shaped["output_cost_per_token"] = row.output_cost_per_token
        yield [shaped[column] for column in CSV_COLUMNS]

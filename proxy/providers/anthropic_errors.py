"""Anthropic's errors → UpstreamError with the status a caller should see.

Anthropic answers `{"type": "error", "error": {"type", "message"}}`, with an HTTP status, or as an
`error` event once a stream has begun. The error type decides, not the status alone: a mid-stream
event has no status of its own, and `overloaded_error` comes as HTTP 529, which no SDK knows as
"try again later" — it becomes a 503. Authentication and permission errors keep their 401/403,
which proxy/errors.py reports as a 502 `upstream_auth_error`: the caller's key is fine, the
deployment's is not.
"""

from typing import Any

import orjson

from proxy.exceptions import UpstreamError

# Anthropic error type → (status to report, code for the envelope)
ERRORS: dict[str, tuple[int, str | None]] = {
    "invalid_request_error": (400, None),
    "authentication_error": (401, None),
    "permission_error": (403, None),
    "not_found_error": (404, "model_not_found"),
    "request_too_large": (413, "request_too_large"),
    "rate_limit_error": (429, None),
    "api_error": (500, None),
    "overloaded_error": (503, "overloaded"),
    "timeout_error": (504, "upstream_timeout"),
}


def http_error(status: int, data: bytes, retry_after: str | None) -> UpstreamError:
    """The error for an HTTP error answer from the Messages API."""
    kind, message = _parse(data)
    if kind not in ERRORS and status == 529:
        kind = "overloaded_error"
    return _error(kind, message or f"Anthropic answered HTTP {status}", status, retry_after)


def event_error(event: dict[str, Any]) -> UpstreamError:
    """The error for an `error` event in a stream (a 200 has been sent; the status is the type's)."""
    found = event.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = str(error.get("type") or "api_error")
    return _error(kind, str(error.get("message") or kind), 500, None)


def _error(kind: str, message: str, status: int, retry_after: str | None) -> UpstreamError:
    mapped, code = ERRORS.get(kind, (status if status < 500 else 502, None))
    return UpstreamError(message, status=mapped, provider="anthropic", retry_after=retry_after, code=code)


def _parse(data: bytes) -> tuple[str, str]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "", data[:500].decode(errors="replace").strip()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", str(body)[:500]
    return str(error.get("type") or ""), str(error.get("message") or "")

"""Google's errors → Tollgate's domain exceptions, which proxy/errors.py turns into HTTP.

Google answers `{"error": {"code", "message", "status", "details"}}` (a stream without alt=sse
wraps it in a list); the `status` name decides what a caller sees. Credential failures never
repeat Google's message: it can name the project, the service account or the resource. The
caller gets a fixed sentence naming the problem. AI Studio refuses a bad API key as
INVALID_ARGUMENT with reason API_KEY_INVALID: that is a credential failure too.
"""

import logging
from typing import Any

import orjson

from proxy.exceptions import ProxyError, UpstreamError, UpstreamTimeout
from proxy.providers.openai_compat import provider_message

log = logging.getLogger(__name__)

# Status per Google status name; anything unlisted is the provider's fault (502).
STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
}
# What each credential failure means, in words that reveal nothing of the credentials.
CREDENTIAL_PROBLEMS = {
    "UNAUTHENTICATED": "Google did not accept the deployment's credentials (an expired or invalid token or key)",
    "PERMISSION_DENIED": (
        "the deployment's Google identity may not call this model: check that the API is enabled for the "
        "project and the service account (or API key) has access to it, e.g. the Vertex AI User role"
    ),
    "API_KEY_INVALID": "Google does not recognise the deployment's API key",
}
BY_HTTP_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def from_response(status: int, data: bytes, *, provider: str, retry_after: str | None = None) -> ProxyError:
    """Return the domain exception for an error answer (`status`, body `data`) from a Google API."""
    error = _error_object(data)
    name = str(error.get("status") or BY_HTTP_STATUS.get(status) or "UNKNOWN")
    if _reason(error) == "API_KEY_INVALID":
        name = "API_KEY_INVALID"
    return from_error(name, error, provider=provider, status=status, retry_after=retry_after, raw=data)


def from_event(event: dict[str, Any], *, provider: str) -> ProxyError:
    """Return the domain exception for an `{"error": ...}` event that arrived inside a stream."""
    found = event.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    code = int(error.get("code") or 502) if str(error.get("code") or "").isdigit() else 502
    name = str(error.get("status") or BY_HTTP_STATUS.get(code) or "UNKNOWN")
    return from_error(name, error, provider=provider, status=code)


def from_error(
    name: str,
    error: dict[str, Any],
    *,
    provider: str,
    status: int,
    retry_after: str | None = None,
    raw: bytes = b"",
) -> ProxyError:
    if name in CREDENTIAL_PROBLEMS:
        log.warning("%s refused the deployment's credentials: %s", provider, name)
        return UpstreamError(
            f"{CREDENTIAL_PROBLEMS[name]} ({name})", status=403, provider=provider, code="upstream_auth_error"
        )
    message = str(error.get("message") or "") or (provider_message(raw)[0] if raw else "")
    if name == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(f"{provider} did not answer in time (DEADLINE_EXCEEDED)", code="upstream_timeout")
    mapped = STATUS.get(name) or (status if 400 <= status < 500 and status not in (401, 403) else 502)
    return UpstreamError(
        message or f"{provider} answered HTTP {status} ({name})",
        status=mapped,
        provider=provider,
        retry_after=retry_after,
        code=name.lower() if name != "UNKNOWN" else None,
    )


def blocked(reason: str, *, provider: str) -> UpstreamError:
    """The prompt was refused by Google's safety filters: the caller's input, so a 400 content_filter."""
    return UpstreamError(
        f"the prompt was blocked by the model's safety filters (blockReason {reason})",
        status=400,
        provider=provider,
        code="content_filter",
    )


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _reason(error: dict[str, Any]) -> str | None:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"])
    return None

"""Every failure → OpenAI's error envelope `{"error": {message, type, param, code}}` and a status.

The only module that knows HTTP statuses. Domain code raises domain exceptions; views and the
stream relay hand them here. Upstream trouble keeps the provider's message so callers see why.
"""

import logging

import orjson
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.views import exception_handler as drf_default_handler

from proxy import exceptions as proxy
from tenants import exceptions as tenants

log = logging.getLogger(__name__)

# (status, type) per exception class; the first match in order wins.
STATUS = [
    (proxy.InvalidRequest, 400, "invalid_request_error"),
    (proxy.BodyTooLarge, 413, "invalid_request_error"),
    (proxy.UnknownModel, 404, "invalid_request_error"),
    (proxy.UnsupportedOperation, 400, "invalid_request_error"),
    (proxy.ProviderMisconfigured, 500, "api_error"),
    (proxy.UpstreamTimeout, 504, "timeout_error"),
    (proxy.UpstreamUnavailable, 502, "api_error"),
    (proxy.NoDeploymentAvailable, 429, "rate_limit_error"),
    (tenants.AuthenticationFailed, 401, "authentication_error"),
    (tenants.ModelNotAllowed, 403, "permission_error"),
    (tenants.BudgetExceeded, 429, "budget_exceeded"),
    (tenants.RateLimited, 429, "rate_limit_error"),
    (tenants.UnpricedModel, 403, "permission_error"),
    (tenants.InvalidInput, 400, "invalid_request_error"),
    (tenants.NotFound, 404, "not_found_error"),
    (tenants.NotPermitted, 403, "permission_error"),
    (tenants.Conflict, 409, "invalid_request_error"),
]
DEFAULT_CODES = {401: "invalid_api_key", 404: "model_not_found", 413: "request_too_large"}


def envelope(message: str, *, type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def describe(exc: Exception, *, quiet: bool = False) -> tuple[int, dict, dict[str, str]]:
    """Return (status, envelope, extra headers) for any exception; log the unexpected unless `quiet`."""
    if isinstance(exc, proxy.UpstreamError):
        return _upstream(exc)
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            code = exc.code or DEFAULT_CODES.get(status)  # type: ignore[attr-defined]
            headers = _rate_limit_headers(exc) if isinstance(exc, tenants.RateLimited) else {}
            if isinstance(exc, proxy.NoDeploymentAvailable):
                headers = {"Retry-After": str(exc.retry_after)}
            return status, envelope(exc.message, type=kind, param=exc.param, code=code), headers  # type: ignore[attr-defined]
    if isinstance(exc, DatabaseError):
        if not quiet:
            log.error("database unavailable: %s", type(exc).__name__)
        return (
            503,
            envelope(
                "Tollgate's database is unavailable; try again shortly.", type="api_error", code="database_unavailable"
            ),
            {"Retry-After": "5"},
        )
    if not quiet:
        log.exception("unexpected error", exc_info=exc)
    return (
        500,
        envelope("Tollgate hit an unexpected error; it has been logged.", type="api_error", code="internal_error"),
        {},
    )


def status_of(exc: Exception) -> int:
    """The status `exc` is answered with: what the usage ledger records for a failed request."""
    return describe(exc, quiet=True)[0]


def code_of(exc: Exception) -> str:
    """A short name for how a request failed (the envelope's code, else its type), for the ledger."""
    error = describe(exc, quiet=True)[1]["error"]
    return str(error["code"] or error["type"])[:64]


def _rate_limit_headers(exc: tenants.RateLimited) -> dict[str, str]:
    headers = {"Retry-After": str(exc.retry_after)}
    if exc.exhausted:
        headers[f"x-ratelimit-remaining-{exc.exhausted}"] = "0"
    return headers


def _upstream(exc: proxy.UpstreamError) -> tuple[int, dict, dict[str, str]]:
    said = f"{exc.provider} said: {exc.message}" if exc.provider else exc.message
    headers = {"Retry-After": exc.retry_after} if exc.retry_after else {}
    if exc.status in (401, 403):
        # The provider refused *our* credentials: the caller's key is fine, the deployment is not.
        message = f"The provider refused the deployment's credentials (HTTP {exc.status}). {said}"
        return 502, envelope(message, type="api_error", code="upstream_auth_error"), {}
    if exc.status == 429:
        return 429, envelope(said, type="rate_limit_error", code=exc.code or "upstream_rate_limited"), headers
    if exc.status < 500:
        return exc.status, envelope(said, type="invalid_request_error", param=exc.param, code=exc.code), {}
    status = 503 if exc.status == 503 else 502
    return status, envelope(said, type="api_error", code=exc.code or "upstream_error"), headers


def response(exc: Exception) -> HttpResponse:
    status, body, headers = describe(exc)
    out = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in headers.items():
        out[name] = value
    return out


def event(exc: Exception) -> bytes:
    """The SSE event that ends a stream cut short, so the client sees an error, not silence."""
    status, body, _ = describe(exc)
    body["error"]["status"] = status
    return b"data: " + orjson.dumps(body) + b"\n\n"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    body = envelope(
        f"No such endpoint: {request.method} {request.path}", type="invalid_request_error", code="unknown_url"
    )
    return HttpResponse(orjson.dumps(body), status=404, content_type="application/json")


def server_error(request: HttpRequest) -> HttpResponse:
    body = envelope("Tollgate hit an unexpected error; it has been logged.", type="api_error", code="internal_error")
    return HttpResponse(orjson.dumps(body), status=500, content_type="application/json")


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> HttpResponse:
    body = envelope(
        f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}.",
        type="invalid_request_error",
        code="method_not_allowed",
    )
    out = HttpResponse(orjson.dumps(body), status=405, content_type="application/json")
    out["Allow"] = ", ".join(allowed)
    return out


def drf_exception_handler(exc: Exception, context: dict):
    """DRF views (management API) answer in the same envelope as the proxy routes."""
    if isinstance(exc, (proxy.ProxyError, tenants.TenantError, DatabaseError)):
        return _as_drf(*describe(exc))
    handled = drf_default_handler(exc, context)
    if handled is None:
        return None
    kind = {
        401: "authentication_error",
        403: "permission_error",
        404: "invalid_request_error",
        429: "rate_limit_error",
    }.get(handled.status_code, "invalid_request_error")
    detail = exc.detail if isinstance(exc, drf.APIException) else handled.data
    message, param = _flatten(detail)
    handled.data = envelope(message, type=kind, param=param, code=getattr(exc, "default_code", None))
    return handled


def _as_drf(status: int, body: dict, headers: dict[str, str]):
    from rest_framework.response import Response

    return Response(body, status=status, headers=headers)


def _flatten(detail) -> tuple[str, str | None]:
    if isinstance(detail, dict):
        for field, value in detail.items():
            text, _ = _flatten(value)
            return (text if field == "non_field_errors" else f"{field}: {text}"), str(field)
    if isinstance(detail, list) and detail:
        # A list of nested serializers reports `{}` for each valid item: name the first failure.
        return _flatten(next((item for item in detail if item), detail[0]))
    return str(detail), None

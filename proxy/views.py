"""The public LLM API: OpenAI- and Mistral-compatible endpoints, with and without /v1.

Plain Django views, not DRF: this is the hot path, and every layer here is paid per request
(docs/concurrency.md has the measurements). Each view reads top to bottom: authenticate, check
the body, resolve the alias, call the provider, relay and settle.
"""

import time
from typing import Any

import orjson
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.decorators import classonlymethod
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from proxy import calls, catalog, errors, router, schemas, streaming
from tenants import auth


class ProxyView(View):
    """Authenticate the caller, run the handler, and turn every failure into the error envelope."""

    caller: auth.Caller
    endpoint = ""  # an LLM endpoint's name in the usage ledger; "" for the others (models)

    @classonlymethod
    def as_view(cls, **initkwargs: Any):
        return csrf_exempt(super().as_view(**initkwargs))  # key auth, not cookies: no CSRF surface

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        started_at = time.time()
        try:
            self.caller = auth.authenticate(request)
            return super().dispatch(request, *args, **kwargs)
        except Exception as e:  # ours, the database being down, or a bug: the envelope, never a HTML page
            if self.endpoint:  # every LLM request leaves a usage row, refused ones too
                calls.refused(request, getattr(self, "caller", None), e, endpoint=self.endpoint, started_at=started_at)
            return errors.response(e)

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return errors.method_not_allowed(request, [m.upper() for m in self.http_method_names if hasattr(self, m)])


class ChatCompletionsView(ProxyView):
    """POST /v1/chat/completions: a JSON answer or a stream."""

    endpoint = "chat"

    def post(self, request: HttpRequest) -> HttpResponseBase:
        body = schemas.chat(request)
        call = calls.begin(request, self.caller, body, endpoint=self.endpoint)  # 403/404/429: no upstream call
        with call.guard():
            if call.stream:
                chunks = call.open_stream(lambda adapter: adapter.stream_chat(body))
                return streaming.stream(chunks, call, include_usage=schemas.wants_usage(body))
            return streaming.answer(call.run(lambda adapter: adapter.chat(body)), call)


class CompletionsView(ProxyView):
    """POST /v1/completions: OpenAI's text completions (FIM for Codestral models)."""

    endpoint = "completions"

    def post(self, request: HttpRequest) -> HttpResponseBase:
        body = schemas.completion(request)
        call = calls.begin(request, self.caller, body, endpoint=self.endpoint)
        with call.guard():
            if call.stream:
                chunks = call.open_stream(lambda adapter: adapter.stream_text_completion(body))
                return streaming.stream(
                    chunks, call, include_usage=schemas.wants_usage(body), object_name="text_completion"
                )
            return streaming.answer(call.run(lambda adapter: adapter.text_completion(body)), call)


class FimCompletionsView(ProxyView):
    """POST /v1/fim/completions: Mistral's fill-in-the-middle, answered chat-shaped."""

    endpoint = "fim"

    def post(self, request: HttpRequest) -> HttpResponseBase:
        body = schemas.fim(request)
        call = calls.begin(request, self.caller, body, endpoint=self.endpoint)
        with call.guard():
            if call.stream:
                chunks = call.open_stream(lambda adapter: adapter.stream_fim(body))
                return streaming.stream(chunks, call, include_usage=schemas.wants_usage(body))
            return streaming.answer(call.run(lambda adapter: adapter.fim(body)), call)


class EmbeddingsView(ProxyView):
    """POST /v1/embeddings."""

    endpoint = "embeddings"

    def post(self, request: HttpRequest) -> HttpResponseBase:
        body = schemas.embeddings(request)
        call = calls.begin(request, self.caller, body, endpoint=self.endpoint)
        with call.guard():
            return streaming.answer(call.run(lambda adapter: adapter.embeddings(body)), call)


class ModelsView(ProxyView):
    """GET /v1/models: the aliases this caller may use."""

    def get(self, request: HttpRequest) -> HttpResponse:
        cards = [catalog.card(group) for group in router.groups(self.caller)]
        return _json({"object": "list", "data": cards})


class ModelDetailView(ProxyView):
    """GET /v1/models/{id}."""

    def get(self, request: HttpRequest, model_id: str) -> HttpResponse:
        return _json(catalog.card(router.resolve(model_id, self.caller)))


def liveliness(request: HttpRequest) -> HttpResponse:
    """GET /health/liveliness: the process answers. No key needed, nothing else checked."""
    return JsonResponse("I'm alive!", safe=False)


def readiness(request: HttpRequest) -> HttpResponse:
    """GET /health/readiness: can this instance serve? Checks the database (and Redis when set)."""
    from django.conf import settings

    started = time.monotonic()
    report: dict[str, Any] = {"status": "healthy", "db": "connected", "cache": None}
    status = 200
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as e:
        report.update(status="unhealthy", db=f"unavailable ({type(e).__name__})")
        status = 503
    if settings.REDIS_URL:
        report["cache"] = _redis_state(settings.REDIS_URL)
    report["tollgate_version"] = _version()
    report["checked_in_ms"] = round((time.monotonic() - started) * 1000, 2)
    return _json(report, status=status)


def _redis_state(url: str) -> str:
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
        return "redis (connected)"
    except Exception as e:
        return f"redis (unavailable: {type(e).__name__}; counters fall back to the database)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tollgate")
    except PackageNotFoundError:
        return "unknown"


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")

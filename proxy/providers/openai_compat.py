"""Any OpenAI-compatible HTTP server (`openai/<model>` with `api_base`), and the base of Mistral's.

The request travels nearly as sent; the subclass hooks `chat_payload`, `embeddings_payload`
and `fim_payload` are where a provider's dialect differs.
"""

import functools
from collections.abc import Iterator
from typing import Any

import orjson
from django.conf import settings

from proxy import crypto, http, shapes
from proxy.exceptions import ProviderMisconfigured, UpstreamError
from proxy.providers.base import Adapter, Body


class OpenAICompatibleAdapter(Adapter):
    default_api_base = "https://api.openai.com/v1"
    api_base_variables: tuple[str, ...] = ("OPENAI_API_BASE", "OPENAI_BASE_URL")
    provider_label = "OpenAI-compatible provider"

    # --- what the provider is sent -----------------------------------------------------------
    def chat_payload(self, body: Body, *, stream: bool) -> Body:
        payload = {**body, "model": self.deployment.provider_model}
        if stream:
            # Ask for usage so the answer can be priced; relay drops it for callers who did not ask.
            payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return payload

    def completion_payload(self, body: Body, *, stream: bool) -> Body:
        return self.chat_payload(body, stream=stream)

    def embeddings_payload(self, body: Body) -> Body:
        return {**body, "model": self.deployment.provider_model}

    # --- operations --------------------------------------------------------------------------
    def chat(self, body: Body) -> Body:
        return shapes.chat_completion(self._call("/chat/completions", self.chat_payload(body, stream=False)))

    def stream_chat(self, body: Body) -> Iterator[Body]:
        response = self._open_stream("/chat/completions", self.chat_payload(body, stream=True))
        return (shapes.chat_chunk(chunk) for chunk in self._events(response))

    def text_completion(self, body: Body) -> Body:
        answer = self._call("/completions", self.completion_payload(body, stream=False))
        answer.setdefault("object", "text_completion")
        return answer

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        return self._events(self._open_stream("/completions", self.completion_payload(body, stream=True)))

    def fim(self, body: Body) -> Body:
        """FIM through the legacy completions endpoint (prompt + suffix), answered chat-shaped."""
        answer = self.text_completion({k: v for k, v in body.items() if k != "stream"})
        return shapes.text_completion_to_chat(answer)

    def stream_fim(self, body: Body) -> Iterator[Body]:
        return (shapes.text_chunk_to_chat_chunk(c) for c in self.stream_text_completion(body))

    def embeddings(self, body: Body) -> Body:
        answer = self._call("/embeddings", self.embeddings_payload(body))
        return shapes.embeddings(answer, encoding_format=body.get("encoding_format"))

    # --- transport ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.api_base().rstrip("/") + path

    def api_base(self) -> str:
        """The deployment's api_base, else the provider's base from the environment (as LiteLLM reads
        MISTRAL_API_BASE, OPENAI_API_BASE, ...), else the provider's public URL."""
        if self.deployment.api_base:
            return crypto.resolve(self.deployment.api_base, self.environment)
        for name in self.api_base_variables:
            found = crypto.environment_value(name, self.environment)
            if found:
                return found
        return self.default_api_base

    @functools.cached_property
    def _api_key(self) -> str:
        """The stored api_key decrypted once per deployment load (a reference stays a reference)."""
        return crypto.unseal(self.deployment.api_key)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.deployment.api_key:
            try:
                headers["Authorization"] = "Bearer " + crypto.resolve(self._api_key, self.environment)
            except crypto.SecretUnavailable as e:
                raise ProviderMisconfigured(
                    f"model '{self.deployment.model_name}' cannot be called: its api_key is unavailable ({e})",
                    code="provider_misconfigured",
                ) from None
        return headers

    def timeout(self) -> float:
        return self.deployment.timeout or settings.TOLLGATE_UPSTREAM_TIMEOUT

    def stream_timeout(self) -> float:
        return self.deployment.stream_timeout or self.timeout()

    def _call(self, path: str, payload: Body) -> Body:
        response = http.post(self.url(path), orjson.dumps(payload), self.headers(), timeout=self.timeout())
        if response.status >= 400:
            raise self._error(response.status, response.data, response.headers.get("retry-after"))
        try:
            answer = orjson.loads(response.data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"{self.provider_label} sent a response that is not JSON", status=502, provider=self.deployment.provider
            ) from None
        return answer

    def _open_stream(self, path: str, payload: Body) -> Any:
        headers = {**self.headers(), "Accept": "text/event-stream"}
        timeout = self.stream_timeout()
        response = http.post(self.url(path), orjson.dumps(payload), headers, timeout=timeout, stream=True)
        if response.status >= 400:
            data = response.read()
            response.release_conn()
            raise self._error(response.status, data, response.headers.get("retry-after"))
        return response

    def _events(self, response: Any) -> Iterator[Body]:
        for data in http.iter_sse_data(response, timeout=self.stream_timeout()):
            if data == b"[DONE]":
                return
            event = orjson.loads(data)
            if isinstance(event, dict) and "error" in event and "choices" not in event:
                raise self._error(502, data, None)
            yield event

    def _error(self, status: int, data: bytes, retry_after: str | None) -> UpstreamError:
        message, code = provider_message(data)
        return UpstreamError(
            message or f"{self.provider_label} answered HTTP {status}",
            status=status,
            provider=self.deployment.provider,
            retry_after=retry_after,
            code=code,
        )


def provider_message(data: bytes) -> tuple[str, str | None]:
    """Pull a readable message out of the error bodies providers send (OpenAI, Mistral, FastAPI)."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data[:500].decode(errors="replace").strip(), None
    if not isinstance(body, dict):
        return str(body)[:500], None
    error = body.get("error", body)
    if isinstance(error, str):
        return error, None
    message: Any = error.get("message") or error.get("detail") or body.get("detail")
    code = error.get("code")
    if isinstance(message, dict) and "detail" in message:
        message = message["detail"]
    if isinstance(message, list):  # FastAPI-style validation details
        message = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            if isinstance(item, dict)
            else str(item)
            for item in message
        )
    return str(message or ""), str(code) if code is not None else None

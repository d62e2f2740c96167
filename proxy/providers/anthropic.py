"""Anthropic (`anthropic/<model>`) through the Messages API, over the pooled HTTP client.

Translation lives in anthropic_convert.py (request, answer), anthropic_stream.py (stream events)
and anthropic_errors.py; this adapter reads the deployment's settings and makes the calls.

- Auth: the `x-api-key` header (the deployment's `api_key`, else ANTHROPIC_API_KEY) and the
  `anthropic-version` header Anthropic requires on every call.
- URL: `api_base` (else ANTHROPIC_API_BASE / ANTHROPIC_BASE_URL, else https://api.anthropic.com);
  `/v1/messages` is appended unless the base already ends with it (LiteLLM accepts both forms).
- `max_tokens` is required by Anthropic; a body without one is sent the deployment's output limit
  (`model_info.max_output_tokens`, else the model's in the price list, else DEFAULT_MAX_TOKENS), the
  same bound admission reserved budget for.
"""

from collections.abc import Iterator

import orjson

from billing import pricebook
from proxy import crypto, http, shapes
from proxy.exceptions import ProviderMisconfigured, UpstreamError
from proxy.providers import anthropic_convert, anthropic_errors, anthropic_stream
from proxy.providers.base import Body
from proxy.providers.mistral import prompt_as_chat
from proxy.providers.openai_compat import OpenAICompatibleAdapter

DEFAULT_API_BASE = "https://api.anthropic.com"
API_VERSION = "2023-06-01"  # the Messages API's only version; features arrive as anthropic-beta flags
DEFAULT_MAX_TOKENS = 4096
API_BASE_VARIABLES = ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL")


class AnthropicAdapter(OpenAICompatibleAdapter):
    """Reuses the OpenAI-compatible adapter's transport (pooled POSTs, SSE reading, timeouts, the
    api_key and api_base settings); every body is translated both ways."""

    default_api_base = DEFAULT_API_BASE
    api_base_variables = API_BASE_VARIABLES
    provider_label = "Anthropic"

    def chat(self, body: Body) -> Body:
        return anthropic_convert.from_messages_response(self._call("", self.messages_request(body)))

    def stream_chat(self, body: Body) -> Iterator[Body]:
        response = self._open_stream("", {**self.messages_request(body), "stream": True})
        events = (orjson.loads(data) for data in http.iter_sse_data(response, timeout=self.stream_timeout()))
        return anthropic_stream.chunks(events, model=self.deployment.provider_model)

    def text_completion(self, body: Body) -> Body:
        return shapes.chat_to_text_completion(self.chat(prompt_as_chat(body)))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        return (shapes.chat_chunk_to_text_chunk(c) for c in self.stream_chat(prompt_as_chat(body)))

    def fim(self, body: Body) -> Body:
        raise self._unsupported("fill-in-the-middle (/v1/fim/completions)")

    def stream_fim(self, body: Body) -> Iterator[Body]:
        raise self._unsupported("streamed fill-in-the-middle (/v1/fim/completions)")

    def embeddings(self, body: Body) -> Body:
        raise self._unsupported("embeddings")

    def messages_request(self, body: Body) -> Body:
        return anthropic_convert.to_messages_request(
            body, model=self.deployment.provider_model, default_max_tokens=self.default_max_tokens()
        )

    def default_max_tokens(self) -> int:
        """The deployment's output limit (model_info, else the price list), else DEFAULT_MAX_TOKENS."""
        info = self.deployment.model_info if isinstance(self.deployment.model_info, dict) else {}
        for name in ("max_output_tokens", "max_tokens"):
            if isinstance(info.get(name), int) and info[name] > 0:
                return int(info[name])
        hit = pricebook.list_price(self.deployment)
        return hit.listed.max_output if hit is not None and hit.listed.max_output else DEFAULT_MAX_TOKENS

    # --- transport ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return messages_url(self.api_base())

    def headers(self) -> dict[str, str]:
        key = self._key()
        if not key:
            raise ProviderMisconfigured(
                f"model '{self.deployment.model_name}' cannot be called: no api_key (nor ANTHROPIC_API_KEY) is set",
                code="provider_misconfigured",
            )
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "x-api-key": key,
            "anthropic-version": API_VERSION,
        }

    def _key(self) -> str | None:
        if not self.deployment.api_key:
            return crypto.environment_value("ANTHROPIC_API_KEY", self.environment)
        try:
            return crypto.resolve(self._api_key, self.environment)
        except crypto.SecretUnavailable as e:  # names the variable, never a value
            raise ProviderMisconfigured(
                f"model '{self.deployment.model_name}' cannot be called: its api_key is unavailable ({e})",
                code="provider_misconfigured",
            ) from None

    def _error(self, status: int, data: bytes, retry_after: str | None) -> UpstreamError:
        return anthropic_errors.http_error(status, data, retry_after)


def messages_url(api_base: str) -> str:
    """The Messages endpoint under `api_base`, which may be the root, `.../v1` or the endpoint itself."""
    base = api_base.rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return base + "/messages"
    return base + "/v1/messages"

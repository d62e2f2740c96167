"""Gemini through Google AI Studio (`gemini/<model>` with an `api_key`), and the Gemini calls Vertex shares.

The translation lives in gemini_convert.py and gemini_stream.py (pure), errors in
google_errors.py, the transport in google_http.py. AI Studio authenticates with the
`x-goog-api-key` header: a header keeps the key out of URLs, and so out of access logs.
"""

import functools
from collections.abc import Iterator
from typing import Any

from proxy import crypto, shapes
from proxy.exceptions import ProviderMisconfigured
from proxy.providers import gemini_convert, gemini_embed, google_errors
from proxy.providers.base import Body
from proxy.providers.gemini_stream import gemini_chunks
from proxy.providers.google_http import GoogleAdapter
from proxy.providers.mistral import prompt_as_chat


class GeminiChat(GoogleAdapter):
    """Chat with a Gemini model through generateContent; subclasses say where (`model_url`) and how (`headers`)."""

    def model_url(self, method: str) -> str:
        raise NotImplementedError

    @property
    def model_id(self) -> str:
        return self.deployment.provider_model

    def chat(self, body: Body) -> Body:
        answer = self.post(self.model_url("generateContent"), gemini_convert.to_gemini_request(body))
        self._refuse_blocked(answer)
        return gemini_convert.from_gemini_response(answer, model=self.model_id)

    def stream_chat(self, body: Body) -> Iterator[Body]:
        return self.open_stream(
            self.model_url("streamGenerateContent") + "?alt=sse",
            gemini_convert.to_gemini_request(body),
            lambda events: gemini_chunks(events, model=self.model_id),
            check_first=self._refuse_blocked,
        )

    def text_completion(self, body: Body) -> Body:
        return shapes.chat_to_text_completion(self.chat(prompt_as_chat(body)))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        return (shapes.chat_chunk_to_text_chunk(c) for c in self.stream_chat(prompt_as_chat(body)))

    def _refuse_blocked(self, answer: dict[str, Any]) -> None:
        reason = gemini_convert.blocked_prompt(answer)
        if reason:
            raise google_errors.blocked(reason, provider=self.deployment.provider)


class GeminiAdapter(GeminiChat):
    """One AI Studio deployment (generativelanguage.googleapis.com)."""

    default_api_base = "https://generativelanguage.googleapis.com/v1beta"
    provider_label = "Gemini"
    key_variables = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def model_url(self, method: str) -> str:
        return f"{self.api_base()}/models/{self.model_id}:{method}"

    def api_base(self) -> str:
        if self.deployment.api_base:
            return crypto.resolve(self.deployment.api_base, self.environment).rstrip("/")
        return (crypto.environment_value("GEMINI_API_BASE", self.environment) or self.default_api_base).rstrip("/")

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Accept": "application/json", "x-goog-api-key": self._key()}

    def embeddings(self, body: Body) -> Body:
        payload = gemini_embed.to_batch_request(body, model=self.model_id)
        answer = self.post(self.model_url("batchEmbedContents"), payload)
        return gemini_embed.from_batch_response(answer, body, model=self.model_id)

    @functools.cached_property
    def _stored_key(self) -> str:
        """The stored api_key decrypted once per deployment load (a reference stays a reference)."""
        return crypto.unseal(self.deployment.api_key)

    def _key(self) -> str:
        try:
            if self.deployment.api_key:
                return crypto.resolve(self._stored_key, self.environment)
        except crypto.SecretUnavailable as e:
            raise ProviderMisconfigured(
                f"model '{self.deployment.model_name}' cannot be called: its api_key is unavailable ({e})",
                code="provider_misconfigured",
            ) from None
        found = next((v for n in self.key_variables if (v := crypto.environment_value(n, self.environment))), None)
        if not found:
            raise ProviderMisconfigured(
                f"model '{self.deployment.model_name}' has no AI Studio api_key (set api_key, or GEMINI_API_KEY)",
                code="provider_misconfigured",
            )
        return found

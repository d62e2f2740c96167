"""Vertex AI (`vertex_ai/<model>`): Gemini models through generateContent, Mistral's through rawPredict.

Settings (litellm_params; each may be `os.environ/NAME`):
- `vertex_credentials`: a service-account key, as JSON (inline or a mapping in the YAML) or the
  path of its file; without it, Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS).
- `vertex_project`: else VERTEXAI_PROJECT / GOOGLE_CLOUD_PROJECT, else the key's project_id.
- `vertex_location`: else VERTEXAI_LOCATION, else us-central1; `global` uses the global endpoint.
- `api_base`: replaces https://{location}-aiplatform.googleapis.com (a proxy, a private endpoint).
LiteLLM's `vertex_ai_project` / `vertex_ai_location` spellings are read too.

Tokens come from vertex_auth.py (minted once, shared, refreshed before they expire).
"""

from collections.abc import Iterator
from typing import Any

from proxy import crypto, shapes
from proxy.exceptions import ProviderMisconfigured
from proxy.providers import gemini_embed, vertex_auth, vertex_mistral
from proxy.providers.base import Body
from proxy.providers.gemini import GeminiChat
from proxy.providers.mistral import prompt_as_chat

DEFAULT_LOCATION = "us-central1"
PROJECT_VARIABLES = ("VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT")
LOCATION_VARIABLES = ("VERTEXAI_LOCATION", "VERTEX_LOCATION")
CREDENTIALS_VARIABLES = ("VERTEXAI_CREDENTIALS", "VERTEX_CREDENTIALS")


class VertexAdapter(GeminiChat):
    """One Vertex AI deployment: a Gemini model, or a Mistral model on the mistralai publisher."""

    provider_label = "Vertex AI"

    def __init__(self, deployment: Any, environment: dict[str, str]) -> None:
        super().__init__(deployment, environment)
        self.mistral = vertex_mistral.is_mistral(self.model_id)
        self.supports_fim = self.mistral and vertex_mistral.is_code_model(self.model_id)
        # (resolved vertex_credentials, its parsed JSON, its token source): parsed once, not per request
        self._source: tuple[str, dict[str, Any] | None, vertex_auth.TokenSource] | None = None

    # --- operations ------------------------------------------------------------------------------
    def chat(self, body: Body) -> Body:
        if not self.mistral:
            return super().chat(body)
        payload = vertex_mistral.chat_payload(body, self.model_id, stream=False)
        return shapes.chat_completion(self.post(self.model_url("rawPredict"), payload))

    def stream_chat(self, body: Body) -> Iterator[Body]:
        if not self.mistral:
            return super().stream_chat(body)
        payload = vertex_mistral.chat_payload(body, self.model_id, stream=True)
        return self.open_stream(self.model_url("streamRawPredict"), payload, _mistral_chunks)

    def fim(self, body: Body) -> Body:
        if not self.supports_fim:
            raise self._unsupported("fill-in-the-middle (/v1/fim/completions)")
        payload = vertex_mistral.fim_payload(body, self.model_id, stream=False)
        return shapes.chat_completion(self.post(self.model_url("rawPredict"), payload))

    def stream_fim(self, body: Body) -> Iterator[Body]:
        if not self.supports_fim:
            raise self._unsupported("streamed fill-in-the-middle (/v1/fim/completions)")
        payload = vertex_mistral.fim_payload(body, self.model_id, stream=True)
        return self.open_stream(self.model_url("streamRawPredict"), payload, _mistral_chunks)

    def text_completion(self, body: Body) -> Body:
        """OpenAI /v1/completions: FIM for Codestral, else the prompt as one user message."""
        if self.supports_fim:
            return shapes.chat_to_text_completion(self.fim(body))
        return shapes.chat_to_text_completion(self.chat(prompt_as_chat(body)))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        chunks = self.stream_fim(body) if self.supports_fim else self.stream_chat(prompt_as_chat(body))
        return (shapes.chat_chunk_to_text_chunk(c) for c in chunks)

    def embeddings(self, body: Body) -> Body:
        if self.mistral:
            raise self._unsupported("embeddings")
        answer = self.post(self.model_url("predict"), gemini_embed.to_predict_request(body))
        return gemini_embed.from_predict_response(answer, body, model=self.model_id)

    # --- where and how ---------------------------------------------------------------------------
    def model_url(self, method: str) -> str:
        publisher = vertex_mistral.PUBLISHER if self.mistral else "google"
        return (
            f"{self.api_base()}/v1/projects/{self.project()}/locations/{self.location()}"
            f"/publishers/{publisher}/models/{self.model_id}:{method}"
        )

    def api_base(self) -> str:
        if self.deployment.api_base:
            return self._resolve("api_base", self.deployment.api_base).rstrip("/")
        location = self.location()
        if location == "global":
            return "https://aiplatform.googleapis.com"
        return f"https://{location}-aiplatform.googleapis.com"

    def location(self) -> str:
        return self._setting(("vertex_location", "vertex_ai_location"), LOCATION_VARIABLES) or DEFAULT_LOCATION

    def project(self) -> str:
        found = self._setting(("vertex_project", "vertex_ai_project"), PROJECT_VARIABLES)
        if found:
            return found
        info = self._service_account()
        if info and info.get("project_id"):
            return str(info["project_id"])
        raise self._misconfigured("no Vertex AI project: set vertex_project (or VERTEXAI_PROJECT)")

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {self._token_source().token()}",
        }

    # --- credentials -----------------------------------------------------------------------------
    def _token_source(self) -> vertex_auth.TokenSource:
        """The shared token source of the deployment's service account, looked up again only when
        the resolved vertex_credentials change (an edited environment variable)."""
        return self._credentials()[2]

    def _service_account(self) -> dict[str, Any] | None:
        return self._credentials()[1]

    def _credentials(self) -> tuple[str, dict[str, Any] | None, vertex_auth.TokenSource]:
        raw = self._raw_credentials()
        if self._source is None or self._source[0] != raw:
            info = vertex_auth.service_account_info(raw) if raw else None
            self._source = (raw, info, vertex_auth.source_for(info))
        return self._source

    def _raw_credentials(self) -> str:
        stored = (self.deployment.credentials or {}).get("vertex_credentials")
        if stored:
            try:
                return self._resolve("vertex_credentials", crypto.unseal(str(stored)))
            except crypto.SecretUnavailable as e:
                raise self._misconfigured(f"vertex_credentials is unavailable ({e})") from None
        return next((v for n in CREDENTIALS_VARIABLES if (v := crypto.environment_value(n, self.environment))), "")

    def _setting(self, names: tuple[str, ...], variables: tuple[str, ...]) -> str | None:
        params = self.deployment.params or {}
        for name in names:
            if params.get(name):
                return self._resolve(name, str(params[name]))
        return next((v for n in variables if (v := crypto.environment_value(n, self.environment))), None)

    def _resolve(self, name: str, value: str) -> str:
        try:
            return crypto.resolve(value, self.environment)
        except crypto.SecretUnavailable as e:
            raise self._misconfigured(f"{name} is unavailable ({e})") from None

    def _misconfigured(self, problem: str) -> ProviderMisconfigured:
        # The message names a setting or a variable, never a value.
        return ProviderMisconfigured(
            f"model '{self.deployment.model_name}' cannot be called: {problem}", code="provider_misconfigured"
        )


def _mistral_chunks(events: Iterator[dict[str, Any]]) -> Iterator[Body]:
    return (shapes.chat_chunk(event) for event in events)

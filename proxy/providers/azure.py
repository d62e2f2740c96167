"""Azure OpenAI (`azure/<deployment>`): OpenAI's wire format at Azure's URLs, with Azure's auth.

The request and answer bodies are OpenAI's, so the OpenAI-compatible adapter does the translation;
this module changes only where Azure differs:
- the URL names the Azure *deployment*, not the model, and carries `api-version`:
  `{api_base}/openai/deployments/{deployment}/chat/completions?api-version=...`;
- the key travels in an `api-key` header, or an Entra ID token as `Authorization: Bearer`
  (a fixed `azure_ad_token`, or one minted from client credentials: azure_auth.py);
- `stream_options` is refused by API versions before 2024-09-01, so older versions are not sent
  it (the relay then counts the streamed tokens itself);
- a stream opens with a chunk of prompt-filter results and no choices, which is dropped;
- a prompt refused by the content filter is a 400 with `code: content_filter` (the categories
  that tripped are named); a filtered completion keeps `finish_reason: content_filter`.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson

from proxy import crypto
from proxy.exceptions import ProviderMisconfigured, UpstreamError
from proxy.providers import azure_auth
from proxy.providers.base import Body
from proxy.providers.openai_compat import OpenAICompatibleAdapter, provider_message

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA version when this was written
STREAM_OPTIONS_SINCE = "2024-09-01"  # the first API version that accepts stream_options
API_BASE_VARIABLES = ("AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT")
API_VERSION_VARIABLES = ("AZURE_API_VERSION", "OPENAI_API_VERSION")
CLIENT_VARIABLES = {
    "tenant_id": "AZURE_TENANT_ID",
    "client_id": "AZURE_CLIENT_ID",
    "client_secret": "AZURE_CLIENT_SECRET",
}


class AzureOpenAIAdapter(OpenAICompatibleAdapter):
    provider_label = "Azure OpenAI"

    # --- what Azure is sent ----------------------------------------------------------------------
    def chat_payload(self, body: Body, *, stream: bool) -> Body:
        payload = super().chat_payload(body, stream=stream)
        if stream and not accepts_stream_options(self.api_version()):
            payload.pop("stream_options", None)
        return payload

    def stream_chat(self, body: Body) -> Iterator[Body]:
        return (chunk for chunk in super().stream_chat(body) if not is_filter_annotation(chunk))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        return (chunk for chunk in super().stream_text_completion(body) if not is_filter_annotation(chunk))

    # --- where and how ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return deployment_url(self.api_base(), self.deployment.provider_model, path, self.api_version())

    def api_base(self) -> str:
        base = (
            self._resolved("api_base", self.deployment.api_base)
            or crypto.environment_value(API_BASE_VARIABLES[0], self.environment)
            or crypto.environment_value(API_BASE_VARIABLES[1], self.environment)
        )
        if not base:
            raise self._misconfigured("api_base (the resource URL, https://<resource>.openai.azure.com) is not set")
        return base

    def api_version(self) -> str:
        return (
            self._resolved("api_version", self.deployment.api_version)
            or next(filter(None, (crypto.environment_value(n, self.environment) for n in API_VERSION_VARIABLES)), None)
            or DEFAULT_API_VERSION
        )

    def headers(self) -> dict[str, str]:
        """`api-key` with a key; `Authorization: Bearer` with an Entra ID token. The deployment's own
        settings first (key, token, client credentials), then the AZURE_* environment variables."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._resolved("api_key", self._api_key) if self.deployment.api_key else None
        if key:
            return {**headers, "api-key": key}
        token = self._resolved("azure_ad_token", self._sealed("azure_ad_token"))
        if token:
            return {**headers, "Authorization": f"Bearer {token}"}
        client = self.client_credentials(from_environment=False)
        if client is None:
            key = crypto.environment_value("AZURE_API_KEY", self.environment)
            if key:
                return {**headers, "api-key": key}
            token = crypto.environment_value("AZURE_AD_TOKEN", self.environment)
            if token:
                return {**headers, "Authorization": f"Bearer {token}"}
            client = self.client_credentials(from_environment=True)
        if client is None:
            raise self._misconfigured(
                "no credentials: set api_key, azure_ad_token, or tenant_id, client_id and client_secret"
            )
        return {**headers, "Authorization": f"Bearer {azure_auth.token(client, timeout=self.timeout())}"}

    def client_credentials(self, *, from_environment: bool) -> azure_auth.ClientCredentials | None:
        """The client-credentials settings, when the deployment (or the environment) gives all three."""
        if from_environment:
            values = {name: crypto.environment_value(var, self.environment) for name, var in CLIENT_VARIABLES.items()}
        else:
            values = {
                "tenant_id": self._resolved("tenant_id", self._param("tenant_id")),
                "client_id": self._resolved("client_id", self._param("client_id")),
                "client_secret": self._resolved("client_secret", self._sealed("client_secret")),
            }
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise self._misconfigured(f"client credentials are incomplete ({', '.join(missing)} not set)")
        authority = (
            self._resolved("azure_authority_host", self._param("azure_authority_host"))
            or crypto.environment_value("AZURE_AUTHORITY_HOST", self.environment)
            or azure_auth.DEFAULT_AUTHORITY
        )
        scope = self._resolved("azure_scope", self._param("azure_scope")) or azure_auth.SCOPE
        return azure_auth.ClientCredentials(
            tenant_id=str(values["tenant_id"]),
            client_id=str(values["client_id"]),
            client_secret=str(values["client_secret"]),
            authority=authority if "://" in authority else f"https://{authority}",
            scope=scope,
        )

    def _error(self, status: int, data: bytes, retry_after: str | None) -> UpstreamError:
        return azure_error(status, data, retry_after)

    # --- settings --------------------------------------------------------------------------------
    def _param(self, name: str) -> str:
        value = (self.deployment.params or {}).get(name)
        return str(value) if value else ""

    def _sealed(self, name: str) -> str:
        try:
            return crypto.unseal(str((self.deployment.credentials or {}).get(name) or ""))
        except crypto.SecretUnavailable as e:
            raise self._misconfigured(f"its {name} is unavailable ({e})") from None

    def _resolved(self, name: str, value: str) -> str | None:
        if not value:
            return None
        try:
            return crypto.resolve(value, self.environment) or None
        except crypto.SecretUnavailable as e:  # names the variable, never a value
            raise self._misconfigured(f"its {name} is unavailable ({e})") from None

    def _misconfigured(self, problem: str) -> ProviderMisconfigured:
        return ProviderMisconfigured(
            f"model '{self.deployment.model_name}' cannot be called: {problem}", code="provider_misconfigured"
        )


def deployment_url(api_base: str, deployment: str, path: str, api_version: str) -> str:
    """Return Azure's URL for one operation of one deployment (`path` is OpenAI's: /chat/completions)."""
    base = api_base.rstrip("/").removesuffix("/openai")
    return f"{base}/openai/deployments/{quote(deployment, safe='')}{path}?api-version={quote(api_version, safe='')}"


def accepts_stream_options(api_version: str) -> bool:
    """Whether this API version takes `stream_options` (dated versions compare as text)."""
    return api_version[:10] >= STREAM_OPTIONS_SINCE


def is_filter_annotation(chunk: Body) -> bool:
    """Azure's first stream chunk: prompt-filter results, no choices, no usage. Not an OpenAI chunk."""
    return not chunk.get("choices") and not chunk.get("usage")


def azure_error(status: int, data: bytes, retry_after: str | None) -> UpstreamError:
    """Map an Azure error body to an UpstreamError; a content-filter refusal names what tripped it."""
    message, code = provider_message(data)
    error = _error_object(data)
    param = error.get("param") if isinstance(error.get("param"), str) else None
    if code == "content_filter":
        tripped = filtered_categories(error)
        if tripped:
            message = f"{message} (filtered: {tripped})"
    if code is not None and code.isdigit():
        code = None  # Azure repeats the status as the code ("429"): say nothing rather than that
    return UpstreamError(
        message or f"Azure OpenAI answered HTTP {status}",
        status=status,
        provider="azure",
        retry_after=retry_after,
        code=code,
        param=param,
    )


def filtered_categories(error: dict[str, Any]) -> str:
    """`hate (high), violence (medium)` from an error's innererror.content_filter_result."""
    inner = error.get("innererror") or {}
    results = inner.get("content_filter_result") or inner.get("content_filter_results") or {}
    names = []
    for category, result in results.items() if isinstance(results, dict) else ():
        if isinstance(result, dict) and result.get("filtered"):
            severity = result.get("severity")
            names.append(f"{category} ({severity})" if severity else category)
    return ", ".join(names)


def _error_object(data: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}

"""Amazon Bedrock (`bedrock/<model id>`, `bedrock/converse/<id>`, `bedrock/invoke/<id>`) through boto3.

The translation lives in pure modules (bedrock_converse.py, bedrock_invoke.py), the choice of API
in bedrock_models.py, the clients in bedrock_client.py and the error mapping in
bedrock_errors.py; this adapter reads the deployment's settings and makes the calls. Streams are
opened before stream_chat returns, so an error status still becomes a clean HTTP error; then
each AWS event-stream message, which botocore decodes as it arrives, is passed on at once.
"""

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings

from proxy import crypto, shapes
from proxy.exceptions import InvalidRequest, ProviderMisconfigured
from proxy.providers import bedrock_client, bedrock_converse, bedrock_invoke
from proxy.providers.base import Adapter, Body
from proxy.providers.bedrock_content import load_image, tool_call_id
from proxy.providers.bedrock_errors import translated
from proxy.providers.bedrock_models import CONVERSE, MESSAGES, PROMPT, route
from proxy.providers.mistral import prompt_as_chat

if TYPE_CHECKING:
    from proxy.models import Deployment

REGION_VARIABLES = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")
ENDPOINT_VARIABLES = ("AWS_BEDROCK_RUNTIME_ENDPOINT",)
JSON = "application/json"


class BedrockAdapter(Adapter):
    """One Bedrock deployment: the API its model takes, and a shared boto3 client built from its settings."""

    def __init__(self, deployment: "Deployment", environment: dict[str, str]) -> None:
        super().__init__(deployment, environment)
        self.model = route(deployment.provider_model)
        # Bedrock-Mistral takes only 9-character alphanumeric tool-call ids; other models any id.
        self.tool_id: Callable[[str], str] = tool_call_id if self.model.mistral else bedrock_converse.same

    # --- operations ------------------------------------------------------------------------------
    def chat(self, body: Body) -> Body:
        model_id = self.model.model_id
        if self.model.api == CONVERSE:
            request = bedrock_converse.to_converse_request(body, load_image=load_image, tool_id=self.tool_id)
            with translated(model_id):
                answer = self._client(stream=False).converse(modelId=model_id, **request)
            return bedrock_converse.from_converse_response(answer, model=model_id, tool_id=self.tool_id)
        payload = self._invoke_body(body)
        with translated(model_id):
            answer = self._client(stream=False).invoke_model(
                modelId=model_id, body=orjson.dumps(payload), contentType=JSON, accept=JSON
            )
            data = orjson.loads(answer["body"].read())
        usage = bedrock_invoke.usage_from_headers(answer["ResponseMetadata"]["HTTPHeaders"])
        if self.model.invoke_format == PROMPT:
            return bedrock_invoke.from_prompt_response(data, model=model_id, usage=usage)
        return bedrock_invoke.from_messages_response(data, model=model_id, usage=usage, tool_id=self.tool_id)

    def stream_chat(self, body: Body) -> Iterator[Body]:
        model_id = self.model.model_id
        if self.model.api == CONVERSE:
            request = bedrock_converse.to_converse_request(body, load_image=load_image, tool_id=self.tool_id)
            with translated(model_id):
                stream = self._client(stream=True).converse_stream(modelId=model_id, **request)["stream"]
            return self._relay(
                stream, lambda events: bedrock_converse.converse_chunks(events, model=model_id, tool_id=self.tool_id)
            )
        payload = self._invoke_body(body)
        with translated(model_id):
            stream = self._client(stream=True).invoke_model_with_response_stream(
                modelId=model_id, body=orjson.dumps(payload), contentType=JSON, accept=JSON
            )["body"]
        return self._relay(
            stream,
            lambda events: bedrock_invoke.invoke_chunks(
                (e["chunk"]["bytes"] for e in events if "chunk" in e), model=model_id, tool_id=self.tool_id
            ),
        )

    def text_completion(self, body: Body) -> Body:
        return shapes.chat_to_text_completion(self.chat(prompt_as_chat(body)))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        return (shapes.chat_chunk_to_text_chunk(c) for c in self.stream_chat(prompt_as_chat(body)))

    def _invoke_body(self, body: Body) -> dict[str, Any]:
        if self.model.invoke_format == PROMPT:
            return bedrock_invoke.to_prompt_body(body)
        if self.model.invoke_format == MESSAGES:
            return bedrock_invoke.to_messages_body(body, tool_id=self.tool_id)
        raise InvalidRequest(
            f"model '{self.deployment.model_name}' ({self.deployment.litellm_model}): Tollgate speaks InvokeModel "
            f"only to Mistral models; use bedrock/converse/{self.model.model_id}",
            param="model",
            code="unsupported_operation",
        )

    def _relay(self, stream: Any, translate: Callable[[Iterable[dict[str, Any]]], Iterator[Body]]) -> Iterator[Body]:
        return _Relay(stream, translate(stream), self.model.model_id)

    # --- the client ------------------------------------------------------------------------------
    def _client(self, *, stream: bool) -> Any:
        timeout = self.deployment.timeout or settings.TOLLGATE_UPSTREAM_TIMEOUT
        read_timeout = (self.deployment.stream_timeout or timeout) if stream else timeout
        return bedrock_client.client(self.client_settings(read_timeout=read_timeout))

    def client_settings(self, *, read_timeout: float) -> bedrock_client.ClientSettings:
        """Resolve the deployment's aws_* params (values or os.environ/ references) now."""
        return bedrock_client.ClientSettings(
            region=self._param("aws_region_name") or self.model.region or self._environment(REGION_VARIABLES),
            endpoint_url=self._param("aws_bedrock_runtime_endpoint")
            or self._resolve("api_base", self.deployment.api_base)
            or self._environment(ENDPOINT_VARIABLES),
            access_key_id=self._secret("aws_access_key_id"),
            secret_access_key=self._secret("aws_secret_access_key"),
            session_token=self._secret("aws_session_token"),
            profile=self._param("aws_profile_name"),
            role_arn=self._param("aws_role_name"),
            session_name=self._param("aws_session_name") or f"tollgate-{self.deployment.pk or 'deployment'}",
            sts_endpoint_url=self._param("aws_sts_endpoint"),
            connect_timeout=min(settings.TOLLGATE_UPSTREAM_CONNECT_TIMEOUT, read_timeout),
            read_timeout=read_timeout,
            pool_size=settings.TOLLGATE_UPSTREAM_POOL_SIZE,
        )

    @functools.cached_property
    def _credentials(self) -> dict[str, str]:
        """The sealed aws_* secrets decrypted once per deployment load (references stay references)."""
        try:
            return {name: crypto.unseal(str(value)) for name, value in (self.deployment.credentials or {}).items()}
        except crypto.SecretUnavailable as e:
            raise self._misconfigured("its AWS credentials", e) from None

    def _secret(self, name: str) -> str | None:
        return self._resolve(name, self._credentials.get(name))

    def _param(self, name: str) -> str | None:
        value = (self.deployment.params or {}).get(name)
        return self._resolve(name, str(value)) if value else None

    def _resolve(self, name: str, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return crypto.resolve(value, self.environment) or None
        except crypto.SecretUnavailable as e:
            raise self._misconfigured(name, e) from None

    def _environment(self, names: tuple[str, ...]) -> str | None:
        return next((found for name in names if (found := crypto.environment_value(name, self.environment))), None)

    def _misconfigured(self, what: str, error: Exception) -> ProviderMisconfigured:
        # The error names a variable or the key change, never a value.
        return ProviderMisconfigured(
            f"model '{self.deployment.model_name}' cannot be called: {what} is unavailable ({error})",
            code="provider_misconfigured",
        )


class _Relay:
    """The OpenAI chunks of one Bedrock stream, with botocore's errors translated as they surface.

    `close()` frees the connection however the relay ends, even before the first chunk was read
    (a generator's `finally` would not run then).
    """

    def __init__(self, stream: Any, chunks: Iterator[Body], model_id: str) -> None:
        self._stream = stream
        self._chunks = chunks
        self._model_id = model_id

    def __iter__(self) -> "_Relay":
        return self

    def __next__(self) -> Body:
        with translated(self._model_id):
            return next(self._chunks)

    def close(self) -> None:
        self._stream.close()

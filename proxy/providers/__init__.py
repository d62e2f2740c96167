"""Provider adapters, registered by the `provider/` prefix of `litellm_params.model`."""

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from proxy.exceptions import ProviderMisconfigured
from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.azure import AzureOpenAIAdapter
from proxy.providers.base import Adapter
from proxy.providers.gemini import GeminiAdapter
from proxy.providers.mistral import CodestralAdapter, MistralAdapter
from proxy.providers.mock import MockAdapter
from proxy.providers.openai_compat import OpenAICompatibleAdapter

if TYPE_CHECKING:
    from proxy.models import Deployment

ADAPTERS: dict[str, type[Adapter]] = {
    "mistral": MistralAdapter,
    "codestral": CodestralAdapter,
    "text-completion-codestral": CodestralAdapter,
    "openai": OpenAICompatibleAdapter,
    "custom_openai": OpenAICompatibleAdapter,
    "hosted_vllm": OpenAICompatibleAdapter,
    "gemini": GeminiAdapter,
    "azure": AzureOpenAIAdapter,
    "anthropic": AnthropicAdapter,
}


# Adapters whose SDK is heavy to import (boto3, google-auth: ~24 MiB each in every worker) are
# imported when a deployment first needs them, so a gateway that uses neither never pays for them.
ON_FIRST_USE = {
    "bedrock": "proxy.providers.bedrock.BedrockAdapter",
    "vertex_ai": "proxy.providers.vertex.VertexAdapter",
}


def is_supported(provider: str) -> bool:
    return provider in ADAPTERS or provider in ON_FIRST_USE


def adapter_class(provider: str) -> "type[Adapter]":
    """The adapter class for a `provider/` prefix; UnsupportedProvider when there is none."""
    if provider not in ADAPTERS and provider in ON_FIRST_USE:
        ADAPTERS[provider] = import_string(ON_FIRST_USE[provider])
    return ADAPTERS.get(provider, UnsupportedProvider)


def adapter_for(deployment: "Deployment", environment: dict[str, str]) -> Adapter:
    """The adapter serving `deployment`; a mock_response always wins. An unsupported provider gets
    an adapter that explains itself on every call, so its alias stays listed and its error is clear."""
    if deployment.mock_response:
        return MockAdapter(deployment, environment)
    return adapter_class(deployment.provider)(deployment, environment)


class UnsupportedProvider(Adapter):
    """Stands in for a deployment whose `provider/` prefix Tollgate cannot call (yet)."""

    def _unsupported(self, what: str) -> ProviderMisconfigured:  # type: ignore[override]
        return ProviderMisconfigured(
            f"model '{self.deployment.model_name}' uses provider '{self.deployment.provider}', which Tollgate does "
            f"not support yet (supported: {', '.join(sorted({*ADAPTERS, *ON_FIRST_USE}))})",
            param="model",
            code="provider_not_supported",
        )

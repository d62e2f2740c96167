"""Provider adapters, registered by the `provider/` prefix of `litellm_params.model`."""

from typing import TYPE_CHECKING

from proxy.exceptions import ProviderMisconfigured
from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.azure import AzureOpenAIAdapter
from proxy.providers.base import Adapter
from proxy.providers.bedrock import BedrockAdapter
from proxy.providers.gemini import GeminiAdapter
from proxy.providers.mistral import CodestralAdapter, MistralAdapter
from proxy.providers.mock import MockAdapter
from proxy.providers.openai_compat import OpenAICompatibleAdapter
from proxy.providers.vertex import VertexAdapter

if TYPE_CHECKING:
    from proxy.models import Deployment

ADAPTERS: dict[str, type[Adapter]] = {
    "mistral": MistralAdapter,
    "codestral": CodestralAdapter,
    "text-completion-codestral": CodestralAdapter,
    "openai": OpenAICompatibleAdapter,
    "custom_openai": OpenAICompatibleAdapter,
    "hosted_vllm": OpenAICompatibleAdapter,
    "bedrock": BedrockAdapter,
    "vertex_ai": VertexAdapter,
    "gemini": GeminiAdapter,
    "azure": AzureOpenAIAdapter,
    "anthropic": AnthropicAdapter,
}


def is_supported(provider: str) -> bool:
    return provider in ADAPTERS


def adapter_for(deployment: "Deployment", environment: dict[str, str]) -> Adapter:
    """The adapter serving `deployment`; a mock_response always wins. An unsupported provider gets
    an adapter that explains itself on every call, so its alias stays listed and its error is clear."""
    if deployment.mock_response:
        return MockAdapter(deployment, environment)
    adapter = ADAPTERS.get(deployment.provider, UnsupportedProvider)
    return adapter(deployment, environment)


class UnsupportedProvider(Adapter):
    """Stands in for a deployment whose `provider/` prefix Tollgate cannot call (yet)."""

    def _unsupported(self, what: str) -> ProviderMisconfigured:  # type: ignore[override]
        return ProviderMisconfigured(
            f"model '{self.deployment.model_name}' uses provider '{self.deployment.provider}', which Tollgate does "
            f"not support yet (supported: {', '.join(sorted(ADAPTERS))})",
            param="model",
            code="provider_not_supported",
        )

"""Provider adapters, registered by the `provider/` prefix of `litellm_params.model`."""

from typing import TYPE_CHECKING

from proxy.exceptions import ProviderMisconfigured
from proxy.providers.base import Adapter
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
}


def is_supported(provider: str) -> bool:
    return provider in ADAPTERS


def adapter_class(deployment: "Deployment") -> type[Adapter]:
    """Return the adapter class serving `deployment`; a mock_response always wins."""
    if deployment.mock_response:
        return MockAdapter
    try:
        return ADAPTERS[deployment.provider]
    except KeyError:
        raise ProviderMisconfigured(
            f"model '{deployment.model_name}' uses provider '{deployment.provider}', which Tollgate does not "
            f"support yet (supported: {', '.join(sorted(ADAPTERS))})",
            param="model",
            code="provider_not_supported",
        ) from None

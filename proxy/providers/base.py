"""What every provider adapter offers, and the small types they share.

An adapter speaks one provider's wire format for one deployment. It takes OpenAI-shaped
request bodies (already validated by proxy/schemas.py, `model` already the alias) and returns
OpenAI-shaped answers. It knows nothing of tenants, keys or budgets.

Stream methods make the upstream request before they return: an error status from the
provider is raised then, while a clean HTTP error can still be sent to the caller. What they
return is an iterator of OpenAI-shaped chunks; the last chunk that has usage carries it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxy.exceptions import UnsupportedOperation

if TYPE_CHECKING:
    from proxy.models import Deployment

Body = dict[str, Any]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def of(cls, payload: dict[str, Any] | None) -> "Usage | None":
        """Read an OpenAI-shaped `usage` object; None when the payload has none."""
        if not payload:
            return None
        prompt = int(payload.get("prompt_tokens") or 0)
        completion = payload.get("completion_tokens")
        if completion is None:
            completion = int(payload.get("total_tokens") or 0) - prompt
        return cls(prompt, int(completion))


class Adapter:
    """Speaks one provider's wire format. Knows nothing of tenants, keys or budgets."""

    #: What `/v1/models` cards advertise unless model_info says otherwise.
    supports_fim = False

    def __init__(self, deployment: "Deployment", environment: dict[str, str]) -> None:
        self.deployment = deployment
        self.environment = environment  # the config file's environment_variables

    def chat(self, body: Body) -> Body:
        """Send an OpenAI-shaped chat request; return an OpenAI-shaped chat completion."""
        raise self._unsupported("chat completions")

    def stream_chat(self, body: Body) -> Iterator[Body]:
        raise self._unsupported("streamed chat completions")

    def text_completion(self, body: Body) -> Body:
        raise self._unsupported("text completions (/v1/completions)")

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        raise self._unsupported("streamed text completions (/v1/completions)")

    def fim(self, body: Body) -> Body:
        raise self._unsupported("fill-in-the-middle (/v1/fim/completions)")

    def stream_fim(self, body: Body) -> Iterator[Body]:
        raise self._unsupported("streamed fill-in-the-middle (/v1/fim/completions)")

    def embeddings(self, body: Body) -> Body:
        raise self._unsupported("embeddings")

    def _unsupported(self, what: str) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"model '{self.deployment.model_name}' ({self.deployment.litellm_model}) does not support {what}",
            param="model",
            code="unsupported_operation",
        )

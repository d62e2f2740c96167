"""Mistral AI (`mistral/<model>`) and Codestral (`codestral/`, `text-completion-codestral/`).

Mistral speaks nearly OpenAI's dialect but refuses any field it does not know with 422
`extra_forbidden`. OpenAI SDKs send several (`stream_options`, `user`, `tool_calls[].index`),
so the payload is rebuilt from the fields Mistral accepts, mapping the OpenAI names that have a
Mistral twin. Mistral-only fields (`safe_prompt`, `random_seed`, `prefix`, `prompt_mode`) pass.
Mistral reports usage on the last stream chunk unasked, which the relay uses for pricing.
"""

from collections.abc import Iterator
from typing import Any

from proxy import shapes
from proxy.exceptions import InvalidRequest
from proxy.providers.base import Body
from proxy.providers.openai_compat import OpenAICompatibleAdapter

# The request fields of Mistral's API (its OpenAPI spec, as the current mistralai SDK encodes it).
CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "min_tokens",
        "stream",
        "stop",
        "random_seed",
        "metadata",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
        "reasoning_effort",
    }
)
FIM_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "suffix",
        "temperature",
        "top_p",
        "max_tokens",
        "min_tokens",
        "stream",
        "stop",
        "random_seed",
        "metadata",
    }
)
EMBEDDINGS_FIELDS = frozenset({"model", "input", "output_dtype", "output_dimension", "metadata"})
MESSAGE_FIELDS = {
    "system": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "prefix"}),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}
TOOL_CALL_FIELDS = frozenset({"id", "type", "function"})
# OpenAI names with a Mistral twin.
RENAMED = {"seed": "random_seed", "max_completion_tokens": "max_tokens", "dimensions": "output_dimension"}
TOOL_CHOICE = {"required": "any"}


def to_mistral_chat(body: Body, model: str) -> Body:
    """Return the Mistral chat payload for an OpenAI- or Mistral-shaped chat body."""
    payload = _accepted(body, CHAT_FIELDS)
    payload["model"] = model
    payload["messages"] = [to_mistral_message(m) for m in body["messages"]]
    choice = payload.get("tool_choice")
    if isinstance(choice, str):
        payload["tool_choice"] = TOOL_CHOICE.get(choice, choice)
    return payload


def to_mistral_message(message: dict[str, Any]) -> dict[str, Any]:
    role = "system" if message.get("role") == "developer" else message.get("role")
    allowed = MESSAGE_FIELDS.get(role or "", frozenset(message))
    out = {k: v for k, v in message.items() if k in allowed}
    out["role"] = role
    if role == "assistant":
        if out.get("content") is None:
            out["content"] = ""
        if out.get("tool_calls"):
            out["tool_calls"] = [{k: v for k, v in call.items() if k in TOOL_CALL_FIELDS} for call in out["tool_calls"]]
        else:
            out.pop("tool_calls", None)
    return out


def to_mistral_fim(body: Body, model: str) -> Body:
    payload = _accepted(body, FIM_FIELDS)
    payload["model"] = model
    payload["prompt"] = single_prompt(body.get("prompt"))
    return payload


def single_prompt(prompt: Any) -> str:
    """FIM takes one prompt string; OpenAI's /v1/completions also allows a list of them."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    raise InvalidRequest(
        "This model completes one prompt per request: send 'prompt' as a string (or a list of one string).",
        param="prompt",
        code="invalid_value",
    )


def _accepted(body: Body, fields: frozenset[str]) -> Body:
    """Keep the fields Mistral knows; an OpenAI name fills its Mistral twin unless that is set too."""
    payload = {key: value for key, value in body.items() if key in fields and value is not None}
    for openai_name, mistral_name in RENAMED.items():
        if body.get(openai_name) is not None and mistral_name in fields:
            payload.setdefault(mistral_name, body[openai_name])
    return payload


class MistralAdapter(OpenAICompatibleAdapter):
    default_api_base = "https://api.mistral.ai/v1"
    api_base_variables = ("MISTRAL_API_BASE",)
    provider_label = "Mistral"
    supports_fim = True

    def chat_payload(self, body: Body, *, stream: bool) -> Body:
        return to_mistral_chat(body, self.deployment.provider_model)

    def embeddings_payload(self, body: Body) -> Body:
        # Vectors come back as floats; the relay encodes base64 itself when the caller asked.
        return {**_accepted(body, EMBEDDINGS_FIELDS), "model": self.deployment.provider_model}

    def fim(self, body: Body) -> Body:
        return shapes.chat_completion(
            self._call("/fim/completions", to_mistral_fim(body, self.deployment.provider_model))
        )

    def stream_fim(self, body: Body) -> Iterator[Body]:
        response = self._open_stream("/fim/completions", to_mistral_fim(body, self.deployment.provider_model))
        return (shapes.chat_chunk(chunk) for chunk in self._events(response))

    def text_completion(self, body: Body) -> Body:
        """OpenAI /v1/completions: FIM for code models, else the prompt as one user message."""
        if self.is_code_model():
            return shapes.chat_to_text_completion(self.fim(body))
        return shapes.chat_to_text_completion(self.chat(prompt_as_chat(body)))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        chunks = self.stream_fim(body) if self.is_code_model() else self.stream_chat(prompt_as_chat(body))
        return (shapes.chat_chunk_to_text_chunk(c) for c in chunks)

    def is_code_model(self) -> bool:
        return "codestral" in self.deployment.provider_model or self.deployment.provider != "mistral"


class CodestralAdapter(MistralAdapter):
    """Codestral's own endpoint; same dialect as Mistral's, FIM first."""

    default_api_base = "https://codestral.mistral.ai/v1"
    api_base_variables = ("CODESTRAL_API_BASE",)
    provider_label = "Codestral"


def prompt_as_chat(body: Body) -> Body:
    text = single_prompt(body.get("prompt"))
    chat = {k: v for k, v in body.items() if k not in {"prompt", "suffix", "echo", "best_of", "logprobs"}}
    chat["messages"] = [{"role": "user", "content": text}]
    return chat

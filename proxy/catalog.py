"""Model cards for /v1/models: one per alias, readable by the OpenAI and both Mistral SDKs.

OpenAI's SDK needs `id`, `object`, `created`, `owned_by`; Mistral's current SDK refuses a card
without `type: "base"` and `capabilities`; the legacy SDK reads `root` and `permission`.
`model_info` in the config (`mode`, `supports_vision`, `max_input_tokens`, ...) overrides
what is guessed from the model's name.
"""

from typing import Any

from proxy.router import ModelGroup

VISION_HINTS = (
    "pixtral",
    "mistral-small",
    "mistral-medium",
    "mistral-large-2411",
    "magistral",
    "gpt-4o",
    "gpt-4.1",
    "gpt-5",
    "claude-3",
    "gemini",
)
FIM_PROVIDERS = {"codestral", "text-completion-codestral"}


def mode(group: ModelGroup) -> str:
    return deployment_mode(group.first)


def deployment_mode(deployment: Any) -> str:
    """`model_info.mode` as LiteLLM reads it; else guessed from the names ("embed" → embedding)."""
    declared = (deployment.model_info or {}).get("mode")
    if isinstance(declared, str) and declared:
        return declared
    if "embed" in f"{deployment.model_name} {deployment.litellm_model}".lower():
        return "embedding"
    if deployment.provider == "text-completion-codestral":
        return "completion"
    return "chat"


def capabilities(group: ModelGroup) -> dict[str, bool]:
    deployment = group.first
    info = deployment.model_info
    name = deployment.provider_model
    is_chat = mode(group) in ("chat", "completion")
    fim = deployment.provider in FIM_PROVIDERS or "codestral" in name or bool(deployment.mock_response)
    return {
        "completion_chat": is_chat,
        "completion_fim": bool(info.get("supports_fim", is_chat and fim)),
        "function_calling": bool(info.get("supports_function_calling", is_chat)),
        "fine_tuning": False,
        "vision": bool(info.get("supports_vision", is_chat and any(h in name for h in VISION_HINTS))),
        "classification": False,
    }


def card(group: ModelGroup) -> dict[str, Any]:
    deployment = group.first
    info = deployment.model_info
    return {
        "id": group.alias,
        "object": "model",
        "created": int(deployment.created_at.timestamp()),
        "owned_by": deployment.provider or "tollgate",
        "type": "base",
        "capabilities": capabilities(group),
        "name": group.alias,
        "description": str(info.get("description") or ""),
        "max_context_length": int(info.get("max_input_tokens") or info.get("max_tokens") or 32768),
        "aliases": [],
        "deprecation": None,
        "default_model_temperature": None,
        "root": deployment.provider_model,
        "parent": None,
        "permission": [],
    }

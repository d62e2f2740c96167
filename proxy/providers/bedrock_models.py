"""Which Bedrock API serves a model, and in which native format: the table in docs/providers-bedrock.md.

`bedrock/converse/<id>` forces Converse, `bedrock/invoke/<id>` forces InvokeModel, and a plain
`bedrock/<id>` takes the model's default below. Mistral's text models default to InvokeModel:
Converse refuses system prompts for them, while their native prompt carries one in the first
instruction. Every other model defaults to Converse, AWS's one format for all chat models, which
is also the only way to send images and tools to most of them.
"""

import re
from dataclasses import dataclass

CONVERSE = "converse"
INVOKE = "invoke"
PROMPT = "prompt"  # Mistral's `<s>[INST] … [/INST]` text format
MESSAGES = "messages"  # Mistral's chat-messages format

# Bedrock model id → (API for a plain bedrock/<id>, InvokeModel body format).
MODELS: dict[str, tuple[str, str]] = {
    "mistral.mistral-7b-instruct-v0:2": (INVOKE, PROMPT),
    "mistral.mixtral-8x7b-instruct-v0:1": (INVOKE, PROMPT),
    "mistral.mistral-large-2402-v1:0": (CONVERSE, PROMPT),
    "mistral.mistral-small-2402-v1:0": (CONVERSE, PROMPT),
    "mistral.mistral-large-2407-v1:0": (CONVERSE, MESSAGES),
    "mistral.pixtral-large-2502-v1:0": (CONVERSE, MESSAGES),
}
# Cross-region inference profiles prefix the model id: us.mistral.pixtral-large-2502-v1:0.
PROFILE = re.compile(r"^(us|eu|apac|jp|au|ca|us-gov|global)\.")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+$")


@dataclass(frozen=True)
class ModelRoute:
    """How one deployment's model is called."""

    model_id: str  # what Bedrock is sent as modelId
    api: str  # CONVERSE or INVOKE
    invoke_format: str | None  # PROMPT or MESSAGES; None when Tollgate knows no native format
    mistral: bool  # Bedrock-Mistral rules apply (9-character tool-call ids)
    region: str | None = None  # from bedrock/<region>/<id>, as LiteLLM allows


def route(provider_model: str) -> ModelRoute:
    """Return how to call `provider_model` (what follows `bedrock/` in litellm_params.model)."""
    forced = None
    rest = provider_model
    head, _, tail = rest.partition("/")
    if head in (CONVERSE, INVOKE) and tail:
        forced, rest = head, tail
    region = None
    head, _, tail = rest.partition("/")
    if REGION.match(head) and tail:
        region, rest = head, tail
    base = PROFILE.sub("", rest)
    mistral = base.startswith("mistral.") or ".mistral." in base or "/mistral." in base
    default, invoke_format = MODELS.get(base, (CONVERSE, MESSAGES if mistral else None))
    return ModelRoute(model_id=rest, api=forced or default, invoke_format=invoke_format, mistral=mistral, region=region)

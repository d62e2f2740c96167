"""Mistral models on Vertex AI (`vertex_ai/mistral-large@2411`, `vertex_ai/codestral@2405`, ...).

Vertex serves them through `rawPredict` / `streamRawPredict` on publishers/mistralai, and the
body is Mistral's own chat (or FIM) format, so proxy/providers/mistral.py's translation is reused
as it is. Vertex names a version after `@` in the URL; the body names the model without it,
as Google's documentation asks.
"""

from proxy.providers.base import Body
from proxy.providers.mistral import to_mistral_chat, to_mistral_fim

PUBLISHER = "mistralai"
MISTRAL_NAMES = ("mistral", "codestral", "ministral", "pixtral", "magistral", "devstral")


def is_mistral(model: str) -> bool:
    """Whether a Vertex model id is one of Mistral's (the publisher then is mistralai, not google)."""
    return model.lower().startswith(MISTRAL_NAMES)


def is_code_model(model: str) -> bool:
    return model.lower().startswith("codestral")


def body_model(model: str) -> str:
    """The model's name for the request body: `mistral-large@2411` → `mistral-large`."""
    return model.split("@", 1)[0]


def chat_payload(body: Body, model: str, *, stream: bool) -> Body:
    payload = to_mistral_chat(body, body_model(model))
    payload["stream"] = stream
    return payload


def fim_payload(body: Body, model: str, *, stream: bool) -> Body:
    payload = to_mistral_fim(body, body_model(model))
    payload["stream"] = stream
    return payload

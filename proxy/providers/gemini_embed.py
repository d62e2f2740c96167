"""OpenAI embeddings ⇄ Google's two embedding APIs, as pure functions.

AI Studio embeds through `batchEmbedContents` and reports no token count, so the prompt's tokens
are estimated (billing/tokens.py) to price the call. Vertex embeds through `predict`, whose
predictions carry each input's `statistics.token_count`, which is used as it is.
"""

from typing import Any

from billing import tokens
from proxy import shapes
from proxy.exceptions import InvalidRequest
from proxy.providers.base import Body


def inputs(body: Body) -> list[str]:
    """The texts to embed; Google embeds text only (no token-id arrays)."""
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "Google's embedding models take 'input' as a string or a list of strings",
            param="input",
            code="invalid_value",
        )
    return texts


def _dimensions(body: Body) -> int | None:
    value = body.get("dimensions", body.get("output_dimension"))
    return int(value) if value else None


def to_batch_request(body: Body, *, model: str) -> dict[str, Any]:
    """The batchEmbedContents body (AI Studio) for an OpenAI embeddings body."""
    dimensions = _dimensions(body)
    requests = []
    for text in inputs(body):
        request: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if dimensions:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def from_batch_response(answer: dict[str, Any], body: Body, *, model: str) -> Body:
    vectors = [item.get("values") or [] for item in answer.get("embeddings") or []]
    prompt_tokens = tokens.estimate_prompt("gemini", model, {"input": inputs(body)})
    return _openai(vectors, prompt_tokens, body, model=model)


def to_predict_request(body: Body) -> dict[str, Any]:
    """The predict body (Vertex text-embedding-* and gemini-embedding-*) for an OpenAI embeddings body."""
    request: dict[str, Any] = {"instances": [{"content": text} for text in inputs(body)]}
    dimensions = _dimensions(body)
    if dimensions:
        request["parameters"] = {"outputDimensionality": dimensions}
    return request


def from_predict_response(answer: dict[str, Any], body: Body, *, model: str) -> Body:
    predictions = [p.get("embeddings") or {} for p in answer.get("predictions") or []]
    vectors = [p.get("values") or [] for p in predictions]
    prompt_tokens = sum(int((p.get("statistics") or {}).get("token_count") or 0) for p in predictions)
    return _openai(vectors, prompt_tokens, body, model=model)


def _openai(vectors: list[list[float]], prompt_tokens: int, body: Body, *, model: str) -> Body:
    return shapes.embeddings(
        {
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        },
        encoding_format=body.get("encoding_format"),
    )

"""`mock_response`: answer with a fixed text and never call out (demos, `make run`, tests).

Token counts are estimates (about four characters a token), marked as such by nothing else:
a mock answer costs nothing unless the deployment sets prices.
"""

import hashlib
import struct
import time
from collections.abc import Iterator

from proxy import shapes
from proxy.providers.base import Adapter, Body, Usage

EMBEDDING_DIMENSIONS = 16


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def prompt_text(body: Body) -> str:
    parts: list[str] = []
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    for key in ("prompt", "suffix"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
    return " ".join(parts)


class MockAdapter(Adapter):
    supports_fim = True

    def _usage(self, body: Body) -> Usage:
        return Usage(estimate_tokens(prompt_text(body)), estimate_tokens(self.deployment.mock_response))

    def chat(self, body: Body) -> Body:
        return shapes.chat_completion(
            {
                "id": shapes.new_id("chatcmpl"),
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.deployment.mock_response},
                        "finish_reason": "stop",
                    }
                ],
                "usage": self._usage(body).as_dict(),
            }
        )

    def stream_chat(self, body: Body) -> Iterator[Body]:
        return self._chunks(body)

    def _chunks(self, body: Body) -> Iterator[Body]:
        base = {
            "id": shapes.new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        words = self.deployment.mock_response.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": self._usage(body).as_dict(),
        }

    def fim(self, body: Body) -> Body:
        return self.chat(body)

    def stream_fim(self, body: Body) -> Iterator[Body]:
        return self._chunks(body)

    def text_completion(self, body: Body) -> Body:
        return shapes.chat_to_text_completion(self.chat(body))

    def stream_text_completion(self, body: Body) -> Iterator[Body]:
        return (shapes.chat_chunk_to_text_chunk(c) for c in self._chunks(body))

    def embeddings(self, body: Body) -> Body:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": _vector(str(text))} for i, text in enumerate(inputs)]
        tokens = sum(estimate_tokens(str(t)) for t in inputs)
        answer = {"model": body["model"], "data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return shapes.embeddings(answer, encoding_format=body.get("encoding_format"))


def _vector(text: str) -> list[float]:
    """A deterministic unit-ish vector: the same text always embeds the same."""
    digest = hashlib.sha256(text.encode()).digest() * 2
    raw = struct.unpack(f"<{EMBEDDING_DIMENSIONS}h", digest[: EMBEDDING_DIMENSIONS * 2])
    return [round(v / 32768, 6) for v in raw]

"""Gemini's `streamGenerateContent?alt=sse` events → OpenAI chunks, as a pure generator.

Each SSE event is a whole GenerateContentResponse holding the next piece of the answer. Text
is passed on at once; a function call arrives whole in one part and is passed on whole. Every
event may carry `usageMetadata` (running totals): the last one counts. The finishing chunk waits
for the end of the stream so that it carries the usage, as Mistral's last chunk does.
"""

from collections.abc import Iterable, Iterator
from typing import Any

from proxy.providers.base import Body, Usage
from proxy.providers.bedrock_converse import ChunkMaker
from proxy.providers.gemini_convert import candidate_content, finish_reason, usage


def gemini_chunks(events: Iterable[dict[str, Any]], *, model: str) -> Iterator[Body]:
    """Re-emit Gemini stream events as OpenAI chunks of choice 0, each as it arrives."""
    chunk = ChunkMaker(model)
    yield chunk({"role": "assistant", "content": ""})
    finish: str | None = None
    reported: Usage | None = None
    calls = 0  # tool calls passed on so far: each gets the next index
    for event in events:
        if event.get("usageMetadata"):
            reported = usage(event["usageMetadata"])
        if event.get("modelVersion"):
            chunk.model = event["modelVersion"]
        candidates = event.get("candidates") or []
        if not candidates:
            continue
        candidate = candidates[0]
        text, tool_calls = candidate_content(candidate)
        if text:
            yield chunk({"content": text})
        if tool_calls:
            for call in tool_calls:
                call["index"] += calls
            calls += len(tool_calls)
            yield chunk({"tool_calls": tool_calls})
        if candidate.get("finishReason"):
            finish = finish_reason(candidate["finishReason"], has_calls=calls > 0)
    yield chunk({}, finish_reason=finish or ("tool_calls" if calls else "stop"), usage=reported)

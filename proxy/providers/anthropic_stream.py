"""Anthropic's streaming events → OpenAI chat chunks, as a pure function of the parsed events.

The Messages API streams typed events: `message_start` (id, model, input usage), then per content
block `content_block_start`, `content_block_delta` (`text_delta`, or `input_json_delta` fragments
of a tool call's input) and `content_block_stop`; then `message_delta` (stop reason, output usage),
`message_stop`; `ping` at any time, `error` when generation fails after the 200.

Text passes on delta by delta. A tool call is passed on whole when its block ends, because the
Mistral SDKs parse each streamed tool call as complete (as Bedrock's stream does). The finishing
chunk carries finish_reason and usage, so the relay prices the answer and a Mistral SDK finds the
usage on the last chunk. A stream that ends before `message_stop` is an error, never a silently
short answer.
"""

import time
from collections.abc import Iterable, Iterator
from typing import Any

from proxy import shapes
from proxy.exceptions import UpstreamUnavailable
from proxy.providers.anthropic_convert import stop_reason, tool_call, usage_dict
from proxy.providers.anthropic_errors import event_error
from proxy.providers.base import Body


def chunks(events: Iterable[dict[str, Any]], *, model: str) -> Iterator[Body]:
    """Re-emit Messages API stream events as OpenAI chunks, each as it arrives."""
    chunk = _Chunks(model)
    reported: dict[str, Any] = {}  # usage so far: message_start's, updated by message_delta's
    finish: str | None = None
    tools: dict[int, dict[str, Any]] = {}  # content block index → the tool call being received
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            chunk.start(message)
            reported.update(message.get("usage") or {})
            yield chunk({"role": "assistant", "content": ""})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                tools[event.get("index", 0)] = {**block, "input": "", "position": len(tools)}
            elif block.get("type") == "text" and block.get("text"):
                yield chunk({"content": block["text"]})
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield chunk({"content": delta["text"]})
            elif delta.get("type") == "input_json_delta" and event.get("index", 0) in tools:
                tools[event.get("index", 0)]["input"] += delta.get("partial_json") or ""
        elif kind == "content_block_stop":
            use = tools.pop(event.get("index", 0), None)
            if use is not None:
                use["input"] = use["input"] or "{}"
                yield chunk({"tool_calls": [tool_call(use, use["position"])]})
        elif kind == "message_delta":
            finish = stop_reason((event.get("delta") or {}).get("stop_reason"))
            reported.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            yield chunk({}, finish_reason=finish or "stop", usage=usage_dict(reported))
            return
        elif kind == "error":
            raise event_error(event)
        # ping, and event types added later (thinking blocks' deltas among them), carry nothing to relay
    raise UpstreamUnavailable("Anthropic's stream ended before the answer was complete", code="upstream_stream_broken")


class _Chunks:
    """Builds the OpenAI chunks of one answer, with the message's id and model once it has started."""

    def __init__(self, model: str) -> None:
        self.id = shapes.new_id("chatcmpl")
        self.model = model
        self.created = int(time.time())

    def start(self, message: dict[str, Any]) -> None:
        self.id = message.get("id") or self.id
        self.model = message.get("model") or self.model

    def __call__(
        self, delta: dict[str, Any], *, finish_reason: str | None = None, usage: dict[str, Any] | None = None
    ) -> Body:
        chunk: Body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk

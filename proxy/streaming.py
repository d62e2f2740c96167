"""Relay an answer to the caller — one JSON body, or SSE chunk by chunk — and settle it.

A stream is re-emitted as each upstream chunk arrives, never buffered. Usage is taken from the
provider's chunks as they pass. The call is settled (billing/ledger.py) before `[DONE]` is sent,
and also when the caller goes away mid-stream, for what was generated; a stream the provider
cuts short ends with an error event, never silently.
"""

import logging
import time
from collections.abc import Iterator

import orjson
from django.http import HttpResponse, StreamingHttpResponse

from proxy import errors, shapes
from proxy.calls import Call
from proxy.providers.base import Body, Usage

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


def answer(result: Body, call: Call) -> HttpResponse:
    """Send a complete JSON answer, settled first (so its cost can go in the headers)."""
    call.settle(status=200, usage=Usage.of(result.get("usage")))
    response = HttpResponse(orjson.dumps(result), content_type="application/json")
    call.headers(response)
    return response


def stream(
    chunks: Iterator[Body], call: Call, *, include_usage: bool, object_name: str = "chat.completion.chunk"
) -> StreamingHttpResponse:
    """Send `chunks` as Server-Sent Events, settled before [DONE]."""
    response = StreamingHttpResponse(
        _events(chunks, call, include_usage=include_usage, object_name=object_name),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # ask proxies in front of Tollgate not to buffer either
    call.headers(response)
    return response


def _events(chunks: Iterator[Body], call: Call, *, include_usage: bool, object_name: str) -> Iterator[bytes]:
    usage: Usage | None = None
    first_token_at: float | None = None
    last: Body = {}
    generated: list[str] = []  # what was relayed, counted only if the provider reports no usage
    try:
        for chunk in chunks:
            if first_token_at is None:
                first_token_at = time.monotonic()
            _collect_text(chunk, generated)
            reported = Usage.of(chunk.get("usage"))
            if reported is not None:
                usage = reported
            if not chunk.get("choices") and reported is not None:
                # A provider's usage-only chunk (OpenAI's, which Tollgate asks for to price the call): a
                # caller who asked gets usage once, on the final chunk below; one who did not, never.
                continue
            if include_usage or reported is None:
                # Usage goes on the final chunk only; drop the `"usage": null` OpenAI adds to every chunk
                # once asked, which a caller who did not ask would not get from OpenAI. Mistral's usage on
                # its last chunk stays for callers who did not ask: the Mistral SDKs read it there.
                chunk.pop("usage", None)
            last = chunk
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    except Exception as e:  # the provider cut the stream, or timed out mid-way
        call.settle(
            status=errors.status_of(e), usage=usage, first_token_at=first_token_at, error=e, generated=generated
        )
        log.warning("request=%s stream broke off: %s", call.request_id, type(e).__name__)
        yield errors.event(e)
        return
    except GeneratorExit:  # the caller went away: bill what was generated
        try:
            call.settle(status=499, usage=usage, first_token_at=first_token_at, generated=generated)
        except Exception:  # the server swallows errors raised while closing a response: say it here
            log.exception("request=%s could not be recorded after the caller left", call.request_id)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # releases the upstream connection however the loop ended
    # Settle before sending [DONE]: a client holding a complete answer must never be unbilled.
    call.settle(status=200, usage=usage, first_token_at=first_token_at, generated=generated)
    if include_usage:
        final = shapes.usage_chunk(
            chunk_id=last.get("id", ""),
            created=last.get("created") or int(time.time()),
            model=last.get("model", call.alias),
            usage=usage or Usage(),
            object_name=object_name,
        )
        yield b"data: " + orjson.dumps(final) + b"\n\n"
    yield DONE


def _collect_text(chunk: Body, into: list[str]) -> None:
    """Keep the text a chunk carries (content, text completion, tool-call arguments) for an estimate."""
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                into.append(content)
            for call in delta.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    into.extend(v for v in (function.get("name"), function.get("arguments")) if isinstance(v, str))
        text = choice.get("text")
        if isinstance(text, str):
            into.append(text)

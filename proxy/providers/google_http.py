"""HTTP to Google's model APIs (Vertex AI, AI Studio): JSON calls and SSE streams on the pooled client.

Shared by the Gemini and Vertex adapters. A stream's first event is read before the stream is
handed to the relay: Google refuses a blocked prompt, and some errors, only in that event, and
reading it first lets them become a clean HTTP error instead of a broken stream.
"""

import itertools
from collections.abc import Callable, Generator, Iterator
from typing import Any

import orjson
from django.conf import settings

from proxy import http
from proxy.exceptions import UpstreamError
from proxy.providers import google_errors
from proxy.providers.base import Adapter, Body


class GoogleAdapter(Adapter):
    """Posts JSON to a Google model API and maps its errors; subclasses build URLs and headers."""

    provider_label = "google"

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def timeout(self) -> float:
        return self.deployment.timeout or settings.TOLLGATE_UPSTREAM_TIMEOUT

    def stream_timeout(self) -> float:
        return self.deployment.stream_timeout or self.timeout()

    def post(self, url: str, payload: Body) -> Body:
        """POST `payload`; return the JSON answer, or raise the domain exception for Google's error."""
        response = http.post(url, orjson.dumps(payload), self.headers(), timeout=self.timeout())
        if response.status >= 400:
            raise self._error(response.status, response.data, response.headers.get("retry-after"))
        try:
            answer = orjson.loads(response.data)
        except orjson.JSONDecodeError:
            raise self._not_json() from None
        return answer

    def open_stream(
        self,
        url: str,
        payload: Body,
        translate: Callable[[Iterator[dict[str, Any]]], Iterator[Body]],
        *,
        check_first: Callable[[dict[str, Any]], None] | None = None,
    ) -> "Stream":
        """Open an SSE stream, read its first event (`check_first` may refuse it), and return
        `translate`'s chunks of all the events."""
        headers = {**self.headers(), "Accept": "text/event-stream"}
        response = http.post(url, orjson.dumps(payload), headers, timeout=self.stream_timeout(), stream=True)
        if response.status >= 400:
            data = response.read()
            response.release_conn()
            raise self._error(response.status, data, response.headers.get("retry-after"))
        events = self._events(response)
        first = next(events, None)  # raises here, before the first byte goes out, if it is an error
        if first is not None and check_first is not None:
            try:
                check_first(first)
            except Exception:
                events.close()  # drops the connection: the rest of the answer is not wanted
                raise
        return Stream(events, translate(itertools.chain([first] if first is not None else [], events)))

    def _events(self, response: Any) -> Generator[dict[str, Any], None, None]:
        for data in http.iter_sse_data(response, timeout=self.stream_timeout()):
            if data == b"[DONE]":  # Mistral on Vertex ends like Mistral; Gemini's stream just ends
                return
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise self._not_json() from None
            if isinstance(event, dict) and "error" in event and not ({"candidates", "choices"} & event.keys()):
                raise google_errors.from_event(event, provider=self.deployment.provider)
            if isinstance(event, dict):
                yield event

    def _error(self, status: int, data: bytes, retry_after: str | None) -> Exception:
        return google_errors.from_response(status, data, provider=self.deployment.provider, retry_after=retry_after)

    def _not_json(self) -> UpstreamError:
        return UpstreamError(
            f"{self.provider_label} sent a response that is not JSON", status=502, provider=self.deployment.provider
        )


class Stream:
    """The chunks of one stream. `close()` ends the SSE reader too, which frees or drops the connection."""

    def __init__(self, events: Iterator[dict[str, Any]], chunks: Iterator[Body]) -> None:
        self._events = events
        self._chunks = chunks

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Body:
        return next(self._chunks)

    def close(self) -> None:
        for generator in (self._chunks, self._events):
            close = getattr(generator, "close", None)
            if close is not None:
                close()

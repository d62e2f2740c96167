"""The one pooled HTTP client every HTTP provider uses.

urllib3's PoolManager directly, not requests: on this path it measured ~1.6x the throughput of a
requests.Session (docs/concurrency.md), and the relay needs nothing requests adds. One pool per
worker process keeps connections to each upstream alive across requests; under gevent each
green thread borrows a connection for the length of its call and returns it.
"""

import logging
from collections.abc import Iterator

import urllib3
from django.conf import settings
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    TimeoutError,
)

from proxy.exceptions import UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger(__name__)

_pool: urllib3.PoolManager | None = None
DRAIN_SECONDS = 1.0  # how long the end of a stream's body may take to follow its [DONE]


def pool() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        _pool = urllib3.PoolManager(
            num_pools=64,
            maxsize=settings.TOLLGATE_UPSTREAM_POOL_SIZE,
            block=False,  # past maxsize, open an extra connection rather than queue behind one
            retries=False,  # retries are the router's decision, never the transport's
        )
    return _pool


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    connect_timeout: float | None = None,
    stream: bool = False,
) -> urllib3.BaseHTTPResponse:
    """POST `body`; return the response (its body unread when `stream`). Map transport failures.

    For a stream, `timeout` bounds the wait for each read (the gap between chunks), not the
    whole answer.
    """
    return request("POST", url, body, headers, timeout=timeout, connect_timeout=connect_timeout, stream=stream)


def request(
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    timeout: float,
    connect_timeout: float | None = None,
    stream: bool = False,
) -> urllib3.BaseHTTPResponse:
    connect = connect_timeout or settings.TOLLGATE_UPSTREAM_CONNECT_TIMEOUT
    try:
        return pool().request(
            method,
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=min(connect, timeout), read=timeout),
            preload_content=not stream,
            redirect=False,
        )
    except NewConnectionError as e:  # first: urllib3 2 makes it a TimeoutError subclass, even when refused
        raise UpstreamUnavailable(
            f"the provider at {_host(url)} could not be reached", code="upstream_unreachable"
        ) from e
    except (ReadTimeoutError, TimeoutError):
        raise UpstreamTimeout(f"the provider did not answer within {timeout:g}s", code="upstream_timeout") from None
    except (ProtocolError, HTTPError) as e:
        raise UpstreamUnavailable(
            f"the connection to the provider at {_host(url)} failed: {type(e).__name__}", code="upstream_unreachable"
        ) from e


def iter_sse_data(response: urllib3.BaseHTTPResponse, *, timeout: float) -> Iterator[bytes]:
    """Yield the payload of each `data:` line of a Server-Sent Events body as it arrives.

    Reads what the socket has (read1), never waiting to fill a buffer, so each event is passed
    on as soon as the provider sends it.
    """
    buffer = b""
    finished = done = False
    try:
        while True:
            data = response.read1(65536)
            if not data:
                finished = True
                break
            buffer += data
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    break
                line = buffer[:end].rstrip(b"\r")
                buffer = buffer[end + 1 :]
                if line.startswith(b"data:"):
                    payload = line[5:].lstrip(b" ")
                    done = payload == b"[DONE]"
                    yield payload
    except (ReadTimeoutError, TimeoutError):
        raise UpstreamTimeout(
            f"the provider sent nothing for {timeout:g}s mid-stream", code="upstream_timeout"
        ) from None
    except (ProtocolError, HTTPError, OSError) as e:
        raise UpstreamUnavailable(
            f"the provider's stream broke off: {type(e).__name__}", code="upstream_stream_broken"
        ) from e
    finally:
        if done and not finished:
            # The reader stops at [DONE]; the body's end follows at once. Read it, so the
            # connection goes back to the pool instead of a new handshake per stream.
            _drain(response)
        elif not finished:
            # Cut short (an error, or the caller went away): close the socket so the provider
            # stops generating, and never hand a half-read connection to the next request.
            response.close()
        response.release_conn()
    tail = buffer.strip()
    if tail.startswith(b"data:"):
        yield tail[5:].lstrip(b" ")


def _drain(response: urllib3.BaseHTTPResponse) -> None:
    """Read what is left of a finished stream, waiting at most DRAIN_SECONDS for it.

    drain_conn closes the connection itself when the read fails or times out, so a provider that
    keeps the body open after [DONE] costs one connection, never a half-read one in the pool.
    """
    sock = getattr(response.connection, "sock", None)
    if sock is None:
        response.close()
        return
    sock.settimeout(DRAIN_SECONDS)  # urllib3 sets the timeout again for the connection's next request
    response.drain_conn()


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).netloc or url

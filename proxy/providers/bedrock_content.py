"""What OpenAI messages carry that Bedrock takes in another form: tool-call ids and images.

Tool-call ids: Mistral models on Bedrock accept only 9-character alphanumeric ids, while clients
send back whatever ids they hold (OpenAI's `call_…`, or ids from another model earlier in the
conversation). `tool_call_id` maps any id to a valid one deterministically: a valid id stays as it
is, any other becomes a hash of itself. The same id therefore maps the same way in the assistant
message and in the tool result, in every worker, and an id Tollgate hands out maps to itself when
it comes back: the client sees stable ids with no state kept anywhere.

Images: Converse takes the image's bytes and format, never a URL, so a data URL is decoded and an
http(s) URL fetched here, each bounded by Bedrock's own per-image limit.
"""

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from proxy import http
from proxy.exceptions import InvalidRequest, UpstreamTimeout, UpstreamUnavailable

TOOL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

MAX_IMAGE_BYTES = 3_750_000  # Converse's limit per image (3.75 MB)
IMAGE_FETCH_TIMEOUT = 10.0
DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)", re.DOTALL)


def tool_call_id(any_id: str) -> str:
    """Return the 9-character alphanumeric id Bedrock-Mistral accepts for `any_id` (stable, stateless)."""
    if TOOL_CALL_ID.fullmatch(any_id):
        return any_id
    number = int.from_bytes(hashlib.sha256(any_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(chars)


@dataclass(frozen=True)
class Image:
    format: str  # png, jpeg, gif or webp
    data: bytes


def load_image(url: str) -> Image:
    """Return the image a content part's `image_url.url` names: a base64 data URL, or fetched over http(s)."""
    if url.startswith("data:"):
        return _from_data_url(url)
    if url.startswith(("http://", "https://")):
        return _fetch(url)
    raise _invalid("an image_url must be a data: URL (base64) or an http(s) URL")


def _from_data_url(url: str) -> Image:
    match = DATA_URL.fullmatch(url)
    if not match:
        raise _invalid("an image data URL must be base64-encoded: data:image/png;base64,...")
    if len(match["data"]) * 3 // 4 > MAX_IMAGE_BYTES + 3:
        raise _too_large()
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("an image data URL holds invalid base64") from None
    return Image(_format(match["type"], data), data)


def _fetch(url: str) -> Image:
    try:
        response = http.request("GET", url, None, {"Accept": "image/*"}, timeout=IMAGE_FETCH_TIMEOUT, stream=True)
    except (UpstreamUnavailable, UpstreamTimeout):
        raise _invalid(f"the image at {url[:200]} could not be fetched") from None
    try:
        if response.status >= 400:
            raise _invalid(f"the image at {url[:200]} could not be fetched (HTTP {response.status})")
        declared = int(response.headers.get("content-length") or 0)
        if declared > MAX_IMAGE_BYTES:
            raise _too_large()
        data = response.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise _too_large()
    finally:
        response.close()
        response.release_conn()
    return Image(_format(response.headers.get("content-type"), data), data)


def _format(content_type: str | None, data: bytes) -> str:
    """The image's format, read from its bytes: Bedrock checks them, whatever the URL declared."""
    found = _sniff(data)
    if found is None:
        declared = (content_type or "").split(";")[0].strip() or "unknown"
        raise _invalid(f"images must be PNG, JPEG, GIF or WebP (got {declared[:40]} content that is none of them)")
    return found


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _too_large() -> InvalidRequest:
    return _invalid(f"an image is larger than Bedrock's limit of {MAX_IMAGE_BYTES / 1_000_000:g} MB per image")


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, param="messages", code="invalid_image")

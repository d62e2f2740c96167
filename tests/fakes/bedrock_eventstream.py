"""The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), encoding side.

botocore ships only a decoder (botocore.eventstream.EventStreamBuffer); the fake Bedrock needs to
send what AWS sends. One message on the wire:

    total length (u32) | headers length (u32) | CRC32 of those 8 bytes (u32)
    headers: name length (u8) | name | value type (u8, 7 = string) | value length (u16) | value
    payload
    CRC32 of everything before it (u32)

All integers big-endian; the CRCs are zlib's CRC32, which is what AWS uses.
"""

import struct
import zlib

STRING = 7
PRELUDE_LENGTH = 12  # the two lengths and the prelude CRC
CRC_LENGTH = 4


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """Return one complete event-stream message."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = PRELUDE_LENGTH + len(encoded) + len(payload) + CRC_LENGTH
    prelude = struct.pack(">II", total, len(encoded))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return head + struct.pack(">I", zlib.crc32(head))


def event(event_type: str, payload: bytes) -> bytes:
    """A normal event, e.g. `contentBlockDelta` with its JSON payload."""
    return message({":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}, payload)


def exception(exception_type: str, payload: bytes) -> bytes:
    """A modelled exception sent after the 200, e.g. `modelStreamErrorException`."""
    return message(
        {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"},
        payload,
    )


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", STRING, len(raw_value)) + raw_value

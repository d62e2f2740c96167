"""Key material: digests and hints. Keys themselves are never stored or logged."""

import hashlib


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hint(key: str) -> str:
    """Return the form of a key that is safe to show and log: `sk-...abcd`."""
    return f"{key[:3]}...{key[-4:]}" if len(key) >= 12 else "***"

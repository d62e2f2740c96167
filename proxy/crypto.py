"""Encryption at rest for provider secrets typed into the admin or a config file.

Secrets are sealed with Fernet (AES-128-CBC + HMAC-SHA256). The key comes from
TOLLGATE_ENCRYPTION_KEY, or is derived from Django's SECRET_KEY with HKDF, so the database
alone never reveals a provider key. `os.environ/NAME` references are not secrets: they are
stored as written and resolved when used.
"""

import base64
import functools
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

ENV_PREFIX = "os.environ/"
SEALED_PREFIX = "fernet:"


class SecretUnavailable(Exception):
    """A secret could not be read: an unset environment variable, or a key that changed."""


@functools.cache
def _fernet() -> Fernet:
    material = (settings.TOLLGATE_ENCRYPTION_KEY or settings.SECRET_KEY).encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tollgate", info=b"provider-secrets").derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def is_reference(value: str) -> bool:
    return value.startswith(ENV_PREFIX)


def seal(value: str) -> str:
    """Return what to store for `value`: references as written, anything else encrypted."""
    if not value or is_reference(value) or value.startswith(SEALED_PREFIX):
        return value
    return SEALED_PREFIX + _fernet().encrypt(value.encode()).decode()


def unseal(stored: str) -> str:
    """Return the stored form with encryption removed (a reference stays a reference)."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    try:
        return _fernet().decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretUnavailable(
            "a stored provider secret cannot be decrypted: SECRET_KEY or TOLLGATE_ENCRYPTION_KEY changed"
        ) from None


def resolve(value: str, overlay: dict[str, str] | None = None) -> str:
    """Return the usable secret: decrypt, and read `os.environ/NAME` from the environment now.

    `overlay` holds the config file's `environment_variables`, which take precedence over the
    process environment, as they do in LiteLLM (it exports them at start-up).
    """
    plain = unseal(value)
    if not is_reference(plain):
        return plain
    name = plain[len(ENV_PREFIX) :]
    found = environment_value(name, overlay)
    if found is None:
        raise SecretUnavailable(f"environment variable {name} is not set")
    return found


def environment_value(name: str, overlay: dict[str, str] | None = None) -> str | None:
    """Read a variable the config file refers to: its environment_variables first, then the process's."""
    return (overlay or {}).get(name) or os.environ.get(name)


def describe(stored: str) -> str:
    """Return what an admin may see of a stored secret: the reference, or only that it is set."""
    if not stored:
        return "—"
    plain_prefix = stored if not stored.startswith(SEALED_PREFIX) else ""
    if is_reference(plain_prefix):
        return plain_prefix
    return "set (encrypted)"

"""The per-installation Django secret key, for when DJANGO_SECRET_KEY is not set."""

import os
import secrets
from pathlib import Path


def load_or_create_secret_key(path: Path) -> str:
    """Return the key stored at `path`, creating it (mode 0600) on first use.

    Sessions and the derived encryption key for provider secrets depend on it, so it must
    survive restarts; a random key per installation is safe where a shipped default is not.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key

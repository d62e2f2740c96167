"""Keep keys out of every log line: gunicorn's access log and Python logging alike.

A key can reach a log through a URL (`/key/sk-…/regenerate`, `/key/info?key=sk-…`) or a message
that quotes a request; whatever the route, anything shaped like a key is replaced by its hint
(`sk-...abcd`) before the line is written. Imports only the standard library and gunicorn, so
gunicorn's master can load it before gevent patches anything.
"""

import logging
import re

from gunicorn.glogging import Logger

KEY = re.compile(r"sk-[A-Za-z0-9_\-]{8,}")


def redact(text: str) -> str:
    return KEY.sub(lambda m: f"sk-...{m.group(0)[-4:]}", text)


class RedactKeys(logging.Filter):
    """A logging filter for handlers: rewrites the formatted message with keys hidden."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sk-" in message:
            record.msg, record.args = redact(message), None
        return True


class RedactingGunicornLogger(Logger):
    """gunicorn's logger, with keys hidden in the access-log atoms (path, request line, query)."""

    def atoms(self, resp, req, environ, request_time):  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if isinstance(value, str) and "sk-" in value:
                atoms[name] = redact(value)
        return atoms

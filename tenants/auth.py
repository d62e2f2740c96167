"""Turn the key a caller presents into a Caller, or refuse with 401.

Keys arrive as `Authorization: Bearer`, `api-key` (Azure style) or `x-api-key` (Anthropic
style). They are compared by SHA-256 digest with `hmac.compare_digest`, so neither the stored
value nor the timing reveals a key. The master key's digest is cached in-process for
TOLLGATE_DEPLOYMENT_CACHE_SECONDS; virtual keys slot in beside it (see docs/).
"""

import hmac
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from tenants import keys
from tenants.exceptions import AuthenticationFailed
from tenants.models import MasterKey


@dataclass(frozen=True)
class Caller:
    """Who is calling: safe to log (`hint`), never the key itself."""

    kind: str  # "master" (virtual keys arrive with teams)
    hint: str
    allowed_models: frozenset[str] | None = None  # None: every model

    @property
    def is_admin(self) -> bool:
        return self.kind == "master"

    def may_use(self, alias: str) -> bool:
        return self.allowed_models is None or alias in self.allowed_models


_master: tuple[float, str] = (0.0, "")


def presented_key(request: HttpRequest) -> str:
    meta = request.META
    authorization = meta.get("HTTP_AUTHORIZATION", "")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else authorization.strip()
    return (meta.get("HTTP_API_KEY") or meta.get("HTTP_X_API_KEY") or "").strip()


def authenticate(request: HttpRequest) -> Caller:
    """Return the Caller for the request's key; raise AuthenticationFailed otherwise."""
    key = presented_key(request)
    if not key:
        raise AuthenticationFailed(
            "No API key provided. Send it as 'Authorization: Bearer <key>', 'api-key' or 'x-api-key'."
        )
    presented = keys.digest(key)
    master = master_digest()
    if master and hmac.compare_digest(presented, master):
        return Caller(kind="master", hint=keys.hint(key))
    raise AuthenticationFailed(f"Invalid API key ({keys.hint(key)}).")


def master_digest() -> str:
    """The master key's digest: TOLLGATE_MASTER_KEY wins over the config file's."""
    if settings.TOLLGATE_MASTER_KEY:
        return keys.digest(settings.TOLLGATE_MASTER_KEY)
    global _master
    loaded_at, value = _master
    if time.monotonic() - loaded_at > settings.TOLLGATE_DEPLOYMENT_CACHE_SECONDS or not value:
        row = MasterKey.objects.order_by("-updated_at").values_list("digest", flat=True).first()
        value = row or ""
        _master = (time.monotonic(), value)
        release_connection()
    return value


def release_connection() -> None:
    """Give the DB connection back now: the request goes on to wait on a provider without it."""
    if not connection.in_atomic_block:
        connection.close()

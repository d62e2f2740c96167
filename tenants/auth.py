"""Turn the key a caller presents into a Caller, or refuse with 401.

Keys arrive as `Authorization: Bearer`, `api-key` (Azure style) or `x-api-key` (Anthropic
style). They are compared by SHA-256 digest — the master key with `hmac.compare_digest`, virtual
keys by an indexed lookup of the digest — so neither the stored value nor the timing reveals a
key. Both are cached in-process and dropped when the tenants generation moves (tenants/keys.py).
"""

import hmac
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from config.database import release_connection
from tenants import keys
from tenants.exceptions import AuthenticationFailed, ModelNotAllowed
from tenants.keys import KeyRecord
from tenants.models import InternalUser, MasterKey

# What LiteLLM calls the master key's user; scripts see it as `created_by`.
MASTER_USER_ID = "default_user_id"
ALL_MODELS = {"*", "all-proxy-models"}


@dataclass(frozen=True)
class Caller:
    """Who is calling: safe to log (`hint`), never the key itself."""

    kind: str  # "master" or "key"
    hint: str
    key: KeyRecord | None = None

    @property
    def user_id(self) -> str | None:
        return MASTER_USER_ID if self.key is None else self.key.user_id

    @property
    def is_admin(self) -> bool:
        """The master key, or a key of a proxy_admin user."""
        return self.key is None or self.key.user_role == InternalUser.Role.PROXY_ADMIN

    def model_for(self, asked: str) -> str:
        """The alias serving `asked`: the key's `aliases` first, then its team's `model_aliases`."""
        if self.key is None:
            return asked
        return self.key.aliases.get(asked) or self.key.team_aliases.get(asked) or asked

    def may_use(self, alias: str) -> bool:
        """Allowed by every list that applies: the key's, and its team's (else its user's)."""
        if self.key is None:
            return True
        owner_models = self.key.team_models if self.key.team_pk else self.key.user_models
        return all(_permits(models, alias) for models in (self.key.models, owner_models))

    def allowed_models(self) -> list[str]:
        if self.key is None:
            return ["*"]
        lists = [m for m in (self.key.models, self.key.team_models if self.key.team_pk else self.key.user_models) if m]
        return sorted(set.intersection(*(set(m) for m in lists))) if lists else ["*"]

    def check_model(self, alias: str) -> None:
        if not self.may_use(alias):
            raise ModelNotAllowed(
                f"This key may not use model '{alias}'. Allowed: {', '.join(self.allowed_models()) or 'none'}.",
                param="model",
                code="model_not_allowed",
            )


def _permits(models: tuple[str, ...], alias: str) -> bool:
    return not models or alias in models or bool(ALL_MODELS.intersection(models))


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
    record = keys.record(presented)
    if record is None:
        raise AuthenticationFailed(f"Invalid API key ({keys.hint(key)}).")
    _check_usable(record)
    return Caller(kind="key", hint=record.key_name, key=record)


def _check_usable(record: KeyRecord) -> None:
    if record.blocked:
        raise AuthenticationFailed(f"The key {record.key_name} is blocked.", code="key_blocked")
    if record.team_blocked:
        raise AuthenticationFailed(
            f"The team {record.team_id} of key {record.key_name} is blocked.", code="team_blocked"
        )
    if record.user_blocked:
        raise AuthenticationFailed(f"The user of key {record.key_name} is blocked.", code="user_blocked")
    if record.expires is not None and record.expires <= timezone.now():
        raise AuthenticationFailed(
            f"The key {record.key_name} expired at {record.expires.isoformat()}.", code="key_expired"
        )


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

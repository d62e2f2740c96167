"""Virtual keys: make them, find them, revoke them. Keys themselves are never stored or logged.

A key is `sk-` + 43 URL-safe random characters (32 bytes). Only its SHA-256 hex digest
(`token`, as LiteLLM names it) is stored, with a hint (`sk-...abcd`) that is safe to show.
Every change bumps the tenants generation, so cached key records everywhere are dropped
within TOLLGATE_AUTH_CACHE_SECONDS.
"""

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from config.database import release_connection
from tenants import generation, ledger_link
from tenants.models import SCOPE_MODELS, TeamMembership, VirtualKey

KEY_BYTES = 32
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hint(key: str) -> str:
    """Return the form of a key that is safe to show and log: `sk-...abcd`."""
    return f"{key[:3]}...{key[-4:]}" if len(key) >= 12 else "***"


def new_secret() -> str:
    return "sk-" + secrets.token_urlsafe(KEY_BYTES)


def token_of(key_or_token: str) -> str:
    """Accept a key or its digest, as LiteLLM's routes do: `sk-...` is hashed, a digest kept."""
    value = key_or_token.strip()
    return value if _HEX_DIGEST.match(value) else digest(value)


@transaction.atomic
def create(*, secret: str | None = None, **fields) -> tuple[VirtualKey, str]:
    """Store a new key (generated unless `secret` is given); return the row and the key, shown once."""
    secret = secret or new_secret()
    key = VirtualKey.objects.create(token=digest(secret), key_name=hint(secret), **fields)
    generation.bump()
    return key, secret


@transaction.atomic
def regenerate(key: VirtualKey, *, secret: str | None = None, by: str = "") -> str:
    """Give `key` a new secret; the old one stops working at once. Spend and limits are kept."""
    secret = secret or new_secret()
    key.token = digest(secret)
    key.key_name = hint(secret)
    key.updated_by = by or key.updated_by
    key.save(update_fields=["token", "key_name", "updated_by", "updated_at"])
    generation.bump()
    return secret


def set_blocked(key: VirtualKey, blocked: bool, *, by: str = "") -> VirtualKey:
    key.blocked = blocked
    key.updated_by = by or key.updated_by
    key.save(update_fields=["blocked", "updated_by", "updated_at"])
    generation.bump()
    return key


def delete(keys: list[VirtualKey]) -> None:
    VirtualKey.objects.filter(pk__in=[k.pk for k in keys]).delete()
    generation.bump()


# --- the hot path's view of a key ------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """One holder of limits a request is charged against: the key, its user, its team, or the
    user's membership in the team. `spend` is as read when the record was cached."""

    kind: str  # "key", "user", "team", "member"
    pk: int
    label: str  # safe to show: "key sk-...abcd", "team team-a"
    max_budget: Decimal | None = None
    spend: Decimal = Decimal(0)
    period: int = 0  # budget_reset_at as a Unix time: a new period starts new counters
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    soft_budget: Decimal | None = None  # only warns

    @property
    def limited(self) -> bool:
        limits = (self.max_budget, self.rpm_limit, self.tpm_limit, self.max_parallel_requests, self.soft_budget)
        return any(v is not None for v in limits)


@dataclass(frozen=True)
class KeyRecord:
    """What admission needs to know of a key, its team and its user; cached per process."""

    pk: int
    token: str
    key_name: str
    key_alias: str
    blocked: bool
    expires: datetime | None
    models: tuple[str, ...]
    aliases: dict
    max_budget: Decimal | None
    team_pk: int | None
    team_id: str | None
    team_blocked: bool
    team_models: tuple[str, ...]
    team_aliases: dict
    user_pk: int | None
    user_id: str | None
    user_role: str | None
    user_blocked: bool
    user_models: tuple[str, ...]
    scopes: tuple[Scope, ...] = ()  # only those with a limit set


_records: dict[str, KeyRecord | None] = {}
_records_generation = -1
_records_lock = threading.Lock()
MAX_CACHED = 100_000


def clear_cache() -> None:
    """Forget every cached key record in this process (tests; the generation does it in production)."""
    global _records_generation
    with _records_lock:
        _records.clear()
        _records_generation = -1


def record(token: str) -> KeyRecord | None:
    """The key with this digest, from the process cache when nothing changed since it was read."""
    global _records_generation
    current = generation.current()
    if current != _records_generation:
        with _records_lock:
            _records.clear()
            _records_generation = current
    try:
        return _records[token]
    except KeyError:
        pass
    found = _load(token)
    if len(_records) >= MAX_CACHED:
        _records.clear()  # unknown keys must not grow the cache without bound
    _records[token] = found
    return found


def _load(token: str) -> KeyRecord | None:
    key = VirtualKey.objects.select_related("team", "user").filter(token=token).first()
    membership = None
    if key is not None and key.team_id is not None and key.user_id is not None:
        membership = TeamMembership.objects.filter(team_id=key.team_id, user_id=key.user_id).first()
    release_connection()
    if key is None:
        return None
    team, user = key.team, key.user
    scopes = [_scope("key", key, f"key {key.key_name}")]
    if user is not None:
        scopes.append(_scope("user", user, f"user {user.user_id}"))
    if team is not None:
        scopes.append(_scope("team", team, f"team {team.team_id}"))
    if membership is not None and membership.max_budget_in_team is not None:
        scopes.append(
            Scope(
                "member",
                membership.pk,
                f"member {user.user_id} of team {team.team_id}",  # type: ignore[union-attr]
                max_budget=membership.max_budget_in_team,
                spend=membership.spend,
                period=_epoch(membership.budget_reset_at),
            )
        )
    return KeyRecord(
        pk=key.pk,
        token=key.token,
        key_name=key.key_name,
        key_alias=key.key_alias,
        blocked=key.blocked,
        expires=key.expires,
        models=tuple(key.allowed_models or ()),
        aliases=dict(key.aliases or {}),
        max_budget=key.max_budget,
        team_pk=team.pk if team else None,
        team_id=team.team_id if team else None,
        team_blocked=bool(team and team.blocked),
        team_models=tuple(team.allowed_models or ()) if team else (),
        team_aliases=dict(team.model_aliases or {}) if team else {},
        user_pk=user.pk if user else None,
        user_id=user.user_id if user else None,
        user_role=user.user_role if user else None,
        user_blocked=bool(user and user.blocked),
        user_models=tuple(user.allowed_models or ()) if user else (),
        scopes=tuple(scope for scope in scopes if scope.limited),
    )


def live_spend(scopes: tuple[Scope, ...], record: "KeyRecord | None") -> dict[str, Decimal]:
    """Each scope's spend as the database has it now plus usage not yet rolled up, by kind.

    What a Redis budget counter starts from (tenants/redis_limits.py). With Redis, settled cost
    reaches the rows' `spend` only through the rollup, so the pending usage is added; it is read
    first and the rows after, so a rollup in between is counted twice (a counter starting a little
    high), never missed.
    """
    pending = ledger_link.uncounted_spend(record.pk, record.user_id, record.team_id) if record else {}
    spends = {}
    for scope in scopes:
        spend = SCOPE_MODELS[scope.kind].objects.filter(pk=scope.pk).values_list("spend", flat=True).first()
        spends[scope.kind] = (spend or Decimal(0)) + pending.get(scope.kind, Decimal(0))
    release_connection()
    return spends


def _scope(kind: str, row, label: str) -> Scope:
    return Scope(
        kind,
        row.pk,
        label,
        max_budget=row.max_budget,
        spend=row.spend,
        period=_epoch(row.budget_reset_at),
        rpm_limit=row.rpm_limit,
        tpm_limit=row.tpm_limit,
        max_parallel_requests=row.max_parallel_requests,
        soft_budget=row.soft_budget,
    )


def _epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0

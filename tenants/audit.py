"""The audit log: every change made through the admin or the management API, and who made it.

Domain functions (tenants/keymanagement.py, teams.py, users.py, proxy/model_api.py) call
`record` once per write, so the API, the admin and the portal leave one trail; admin saves that
no domain function makes (prices, deployments, memberships) are recorded by the admin itself
(tenants/admin_audit.py). Who acted comes from the request being handled (`recording(request)`,
entered by the management views and the admin), else from the Caller the domain function was
given, else "system". Everything stored passes through `redact`: key digests, provider keys and
credentials become "***", so the log can be shown to anyone who may read the admin.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest

from tenants.auth import Caller
from tenants.models import AuditEntry, InternalUser, Team, TeamMembership, VirtualKey

REDACTED = "***"
# A field whose name has one of these words holds a secret (model_api.py judges names alike).
SECRET_WORDS = {"key", "secret", "token", "password", "credential", "credentials", "auth", "authorization", "private"}
# A key's hint and names, and prices, are safe to show.
NOT_SECRET = {"key_alias", "key_name", "key_aliases", "input_cost_per_token", "output_cost_per_token"}
# A key or a sealed value inside any string: the hint form "sk-...abcd" does not match.
_SECRET_TEXT = re.compile(r"sk-[A-Za-z0-9_\-]{8,}|fernet:\S+")
# Counters the hot path and the rollup move: nobody's change, only noise in a diff.
UNRECORDED = {"reserved", "in_flight", "window_minute", "window_requests", "window_tokens", "spend", "updated_at"}

OBJECT_TYPES: dict[type[models.Model], str] = {
    VirtualKey: "key",
    Team: "team",
    InternalUser: "user",
    TeamMembership: "membership",
}

_request: ContextVar[HttpRequest | None] = ContextVar("tollgate_audit_request", default=None)


@contextmanager
def recording(request: HttpRequest) -> Iterator[None]:
    """Attribute the changes made while handling `request` to whoever sent it."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def record(
    action: str,
    obj: models.Model,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    caller: Caller | None = None,
) -> AuditEntry | None:
    """Write one entry for `action` on `obj`, inside the caller's transaction (a rollback drops it).

    With both `before` and `after` only the fields that differ are kept; an update that changed
    nothing leaves no entry. Snapshots come from `snapshot(obj)`.
    """
    if before is not None and after is not None:
        before, after = _changed(before, after)
        if not before and not after and action == "update":
            return None
    actor, via, request_id = _who(caller)
    return AuditEntry.objects.create(
        actor=actor[:255],
        via=via,
        action=action,
        object_type=object_type(obj),
        object_id=object_id(obj)[:255],
        object_repr=redact(str(obj))[:255],
        before=redact(before) if before is not None else None,
        after=redact(after) if after is not None else None,
        request_id=request_id[:64],
    )


def snapshot(obj: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """The row's recordable fields as JSON values; a relation by its public id.

    Secrets are still in it (so a changed secret shows as changed): `record` redacts.
    """
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name in UNRECORDED or (fields is not None and field.name not in fields):
            continue
        if field.is_relation:
            related = getattr(obj, field.name)
            values[field.name] = _public_id(related) if related is not None else None
        else:
            values[field.name] = _plain(getattr(obj, field.attname))
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def redact(value: Any, name: str = "") -> Any:
    """`value` with every secret replaced by "***": by its field's name, or by its look."""
    if name and name not in NOT_SECRET and SECRET_WORDS.intersection(re.split(r"[^a-z0-9]+", name.lower())):
        return REDACTED if value not in (None, "", {}, []) else value
    if isinstance(value, dict):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(REDACTED, value)
    return value


def object_type(obj: models.Model) -> str:
    return OBJECT_TYPES.get(type(obj), obj._meta.model_name or "object")


def object_id(obj: models.Model) -> str:
    """Teams and users by the id the API uses; keys by primary key (their digest is a secret)."""
    if isinstance(obj, TeamMembership):
        return f"{obj.team.team_id}/{obj.user.user_id}"
    return str(_public_id(obj))


def describe(caller: Caller) -> str:
    """Name an API caller without its key: the master key or a user, with the key's hint."""
    if caller.kind == "master":
        return f"master key ({caller.hint})"
    if caller.key is None:
        return caller.hint
    return f"{caller.user_id or 'key'} ({caller.hint})"


def _who(caller: Caller | None) -> tuple[str, str, str]:
    """(actor, via, request id) of the change being recorded."""
    request = _request.get()
    if request is not None:
        request_id = getattr(request, "request_id", "")
        auth = getattr(request, "auth", None)
        if isinstance(auth, Caller):
            return describe(auth), AuditEntry.Via.API, request_id
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            via = AuditEntry.Via.ADMIN if request.path.startswith("/admin/") else AuditEntry.Via.WEB
            return user.get_username(), via, request_id
    if caller is not None:
        return describe(caller), AuditEntry.Via.SYSTEM, ""
    return "system", AuditEntry.Via.SYSTEM, ""


def _plain(value: Any) -> Any:
    """Money as its exact digits without a column's trailing zeros: 5 and 5.0000000000 are one value."""
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


def _public_id(obj: models.Model) -> Any:
    if isinstance(obj, Team):
        return obj.team_id
    if isinstance(obj, InternalUser):
        return obj.user_id
    return obj.pk


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = [n for n in dict.fromkeys([*before, *after]) if before.get(n) != after.get(n)]
    return {n: before.get(n) for n in names}, {n: after.get(n) for n in names}

"""Changing virtual keys as LiteLLM's /key/* routes do: what generate, update, regenerate, block
and delete set, within what the caller may (tenants/keyaccess.py decides who may do what).

A team admin creates keys for themselves or as team keys, within the team's models and budget;
a member may always create personal keys for themselves (no team), and in a team only what the
team's `team_member_permissions` grant. Every change goes through tenants/keys.py or bumps the
tenants generation itself, so cached key records everywhere drop it.
"""

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants import audit, durations, generation, keyaccess, keys, roles
from tenants.auth import ALL_MODELS, Caller
from tenants.exceptions import InvalidInput, NotFound, NotPermitted
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

log = logging.getLogger(__name__)

# LiteLLM's UI asks for this on team keys; an empty list already means "whatever the team may use".
ALL_TEAM_MODELS = "all-team-models"
# Fields that only a proxy admin may set: they widen what a key may do beyond its owner's say.
ADMIN_ONLY_FIELDS = ("permissions", "allowed_routes")
# Fields only an admin of the key's team (or a proxy admin) may change on an existing key: a key's
# owner must not lift its budget, restart its budget period, or unblock it through /key/update.
GUARDED_FIELDS = ("max_budget", "soft_budget", "budget_duration", "blocked")


# --- changing keys ---------------------------------------------------------------------------


@transaction.atomic
def generate(
    caller: Caller,
    *,
    secret: str | None = None,
    team_id: str | None = None,
    user_id: str | None = None,
    **fields: Any,
) -> tuple[VirtualKey, str]:
    """Create a key with LiteLLM's /key/generate fields; return it and the key, shown once.

    A non-admin's key is always their own (`user_id` defaults to them, as in LiteLLM); a team key
    needs a team admin (or a member the team lets generate keys), and fits the team's models and
    budget. Raises InvalidInput (400), NotPermitted (403).
    """
    keyaccess.require_writer(caller)
    team = _team(team_id)
    if not caller.is_admin:
        user_id = user_id or caller.user_id
        if user_id != caller.user_id:
            raise NotPermitted(
                f"You may only create keys for yourself (user_id={caller.user_id}); got user_id={user_id}.",
                param="user_id",
                code="not_own_user",
            )
        if team is not None and not keyaccess.granted(caller, team, "/key/generate"):
            raise NotPermitted(
                f"You may not create keys for team {team.team_id}: only its admins may"
                " (or members, when the team's team_member_permissions include /key/generate).",
                param="team_id",
                code="not_team_admin",
            )
    user = _user(user_id)
    _check(caller, fields, team=team, user=user, new_owner=True)
    now = timezone.now()
    key = VirtualKey(team=team, user=user, created_by=caller.user_id or "", updated_by=caller.user_id or "")
    _apply(key, fields, now=now)
    _check_alias_free(key)
    try:
        with transaction.atomic():
            created, new_secret = keys.create(secret=secret, **_columns(key))
    except IntegrityError:
        raise _taken(key, custom_secret=secret is not None) from None
    _audit("generated", created, caller)
    audit.record("create", created, after=audit.snapshot(created), caller=caller)
    return created, new_secret


@transaction.atomic
def update(caller: Caller, key: VirtualKey, **fields: Any) -> VirtualKey:
    """Change the fields sent (and only those) on a key the caller may update.

    `duration` restarts the expiry from now (null or "-1": never); `budget_duration` restarts the
    budget period; `metadata` replaces the stored one, `tags` go into it. A budget change needs an
    admin of the key's team; moving the key to another team or user is checked like generate.
    """
    keyaccess.check_may(caller, key, action="update")
    before = audit.snapshot(key)
    team, user = key.team, key.user
    if "team_id" in fields:
        team = _team(fields.pop("team_id"))
        if team != key.team and not caller.is_admin and (team is None or not roles.is_team_admin(caller, team)):
            raise NotPermitted(
                "Only a proxy admin, or an admin of the team the key moves to, may change its team_id.",
                param="team_id",
                code="not_team_admin",
            )
    if "user_id" in fields:
        user = _user(fields.pop("user_id"))
        if user != key.user and not caller.is_admin:
            raise NotPermitted(
                "Only a proxy admin may give a key to another user.", param="user_id", code="not_own_user"
            )
    guarded = [name for name in GUARDED_FIELDS if name in fields and _stored(name, fields[name]) != getattr(key, name)]
    if guarded and not caller.is_admin and not (key.team and roles.is_team_admin(caller, key.team)):
        raise NotPermitted(
            f"Only a proxy admin or an admin of the key's team may change its {guarded[0]}.",
            param=guarded[0],
            code="not_key_admin",
        )
    new_owner = team != key.team or user != key.user
    if new_owner:
        # Models and budgets are checked against the new owner even when they were not sent.
        fields.setdefault("allowed_models", key.allowed_models)
        fields.setdefault("max_budget", key.max_budget)
    _check(caller, fields, team=team, user=user, new_owner=new_owner)
    key.team, key.user = team, user
    key.updated_by = caller.user_id or ""
    _apply(key, fields, now=timezone.now())
    _check_alias_free(key)
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:
        raise _taken(key, custom_secret=False) from None
    generation.bump()
    _audit("updated", key, caller, fields=sorted(fields))
    audit.record("update", key, before=before, after=audit.snapshot(key), caller=caller)
    return key


@transaction.atomic
def regenerate(caller: Caller, key: VirtualKey, *, secret: str | None = None, **fields: Any) -> str:
    """Give the key a new secret (the old one is refused at once), applying any update fields
    sent with it; spend and everything not sent are kept. Return the new key, shown once."""
    if fields:
        update(caller, key, **fields)
    old_name = key.key_name
    try:
        with transaction.atomic():
            new_secret = keys.regenerate(key, secret=secret, by=caller.user_id or "")
    except IntegrityError:
        raise InvalidInput("This key is already in use; choose another.", param="new_key", code="key_taken") from None
    _audit("regenerated", key, caller, replaces=old_name)
    audit.record("regenerate", key, before={"key_name": old_name}, after={"key_name": key.key_name}, caller=caller)
    return new_secret


@transaction.atomic
def set_blocked(caller: Caller, key: VirtualKey, blocked: bool) -> VirtualKey:
    was = key.blocked
    keys.set_blocked(key, blocked, by=caller.user_id or "")
    _audit("blocked" if blocked else "unblocked", key, caller)
    action = "block" if blocked else "unblock"
    audit.record(action, key, before={"blocked": was}, after={"blocked": blocked}, caller=caller)
    return key


@transaction.atomic
def delete(caller: Caller, values: Iterable[str], *, by_alias: bool = False) -> list[VirtualKey]:
    """Delete every key named (keys or digests, else aliases), or none of them.

    A key the caller cannot read counts as missing: NotFound, nothing deleted. A key it can read
    but not delete: NotPermitted, nothing deleted.
    """
    keyaccess.require_writer(caller)
    visible = keyaccess.readable(caller).select_related("team", "user")
    named = list(dict.fromkeys(values))
    if by_alias:
        found = {k.key_alias: k for k in visible.filter(key_alias__in=[a for a in named if a])}
        missing = [alias for alias in named if alias not in found]
        if missing:
            raise NotFound(f"Key not found: key_alias={missing[0]}.", param="key_aliases", code="key_not_found")
        chosen = [found[alias] for alias in named]
    else:
        tokens = [keys.token_of(value) for value in named]
        by_token = {k.token: k for k in visible.filter(token__in=tokens)}
        if len(by_token) < len(set(tokens)):
            raise NotFound("Key not found; nothing was deleted.", param="keys", code="key_not_found")
        chosen = list({token: by_token[token] for token in tokens}.values())
    for key in chosen:
        keyaccess.check_may(caller, key, action="delete")
    snapshots = [audit.snapshot(key) for key in chosen]
    keys.delete(chosen)
    for key, before in zip(chosen, snapshots, strict=True):
        _audit("deleted", key, caller)
        audit.record("delete", key, before=before, caller=caller)
    return chosen


def check(caller: Caller, key: VirtualKey, fields: dict[str, Any]) -> None:
    """Raise what `update` would refuse in `fields` for the key's owner, changing nothing.

    For forms (the admin) that show a refusal next to the field before anything is saved.
    """
    _check(caller, dict(fields), team=key.team, user=key.user, new_owner=False)
    alias = fields.get("key_alias", key.key_alias)
    if alias and VirtualKey.objects.filter(key_alias=alias).exclude(pk=key.pk).exists():
        raise InvalidInput(f"key_alias={alias} already exists.", param="key_alias", code="key_alias_taken")


# --- rules on the fields ---------------------------------------------------------------------


def _check(
    caller: Caller, fields: dict[str, Any], *, team: Team | None, user: InternalUser | None, new_owner: bool
) -> None:
    """Refuse fields a key of this team (else this user) may not have, or this caller may not set.

    The user must be in the team when either is new to the key (a user who left keeps their key).
    """
    if not caller.is_admin:
        for name in ADMIN_ONLY_FIELDS:
            if fields.get(name):
                raise NotPermitted(f"Only a proxy admin may set {name} on a key.", param=name, code="admin_only_field")
    if new_owner and team and user and not TeamMembership.objects.filter(team=team, user=user).exists():
        raise InvalidInput(
            f"User {user.user_id} is not a member of team {team.team_id}; add them with /team/member_add first.",
            param="user_id",
            code="user_not_in_team",
        )
    if "allowed_models" in fields:
        fields["allowed_models"] = [m for m in fields["allowed_models"] if m != ALL_TEAM_MODELS]
        owner_models = (team.allowed_models if team else user.allowed_models if user else []) or []
        if owner_models and not ALL_MODELS.intersection(owner_models):
            outside = [m for m in fields["allowed_models"] if m not in owner_models and m not in ALL_MODELS]
            if outside:
                owner = f"team {team.team_id}" if team else f"user {user.user_id}" if user else ""
                raise InvalidInput(
                    f"models: {', '.join(outside)} not allowed for {owner}. Allowed: {', '.join(owner_models)}.",
                    param="models",
                    code="model_not_allowed",
                )
    max_budget: Decimal | None = fields.get("max_budget")
    if max_budget is not None:
        if team is not None and team.max_budget is not None and max_budget > team.max_budget:
            raise InvalidInput(
                f"max_budget ({_usd(max_budget)}) cannot exceed the max_budget of team {team.team_id}"
                f" ({_usd(team.max_budget)}).",
                param="max_budget",
                code="over_team_budget",
            )
        own = caller.key.max_budget if caller.key is not None and not caller.is_admin else None
        if own is not None and max_budget > own:
            raise InvalidInput(
                f"max_budget ({_usd(max_budget)}) cannot exceed your own key's max_budget ({_usd(own)}).",
                param="max_budget",
                code="over_own_budget",
            )


def _apply(key: VirtualKey, fields: dict[str, Any], *, now) -> None:
    """Set the validated fields on the row: durations become times, null becomes empty."""
    for name, value in fields.items():
        if name == "duration":
            key.expires = durations.expiry(value, now)
        elif name == "budget_duration":
            key.budget_duration = value or ""
            key.budget_reset_at = durations.next_reset(value, now) if value else None
        elif name == "tags":
            continue  # into metadata, below: metadata sent in the same call replaces the old first
        else:
            setattr(key, name, _stored(name, value))
    if fields.get("tags") is not None:
        key.metadata = {**(key.metadata or {}), "tags": fields["tags"]}


_EMPTY: dict[str, Any] = {
    "key_alias": "",
    "metadata": {},
    "allowed_models": [],
    "aliases": {},
    "permissions": {},
    "allowed_routes": [],
    "blocked": False,
    "budget_duration": "",
}


def _stored(name: str, value: Any) -> Any:
    """The column value for an API value: null is empty where the column cannot be null."""
    return _EMPTY[name] if value is None and name in _EMPTY else value


def _columns(key: VirtualKey) -> dict[str, Any]:
    """The row's field values, as keys.create takes them."""
    names = [f.name for f in VirtualKey._meta.concrete_fields if f.editable and not f.primary_key]
    return {name: getattr(key, name) for name in names if name not in ("created_at", "updated_at")}


def _team(team_id: str | None) -> Team | None:
    if not team_id:
        return None
    team = Team.objects.filter(team_id=team_id).first()
    if team is None:
        raise InvalidInput(f"Team not found, passed team_id={team_id}.", param="team_id", code="team_not_found")
    return team


def _user(user_id: str | None) -> InternalUser | None:
    if not user_id:
        return None
    user = InternalUser.objects.filter(user_id=user_id).first()
    if user is None:
        raise InvalidInput(
            f"User not found, passed user_id={user_id}; create it with /user/new first.",
            param="user_id",
            code="user_not_found",
        )
    return user


def _check_alias_free(key: VirtualKey) -> None:
    if key.key_alias and VirtualKey.objects.filter(key_alias=key.key_alias).exclude(pk=key.pk).exists():
        raise InvalidInput(
            f"Unique key aliases across all keys are required. key_alias={key.key_alias} already exists.",
            param="key_alias",
            code="key_alias_taken",
        )


def _taken(key: VirtualKey, *, custom_secret: bool) -> InvalidInput:
    """What a unique constraint said: a custom key already in use, or an alias taken in a race."""
    alias_taken = bool(key.key_alias) and VirtualKey.objects.filter(key_alias=key.key_alias).exclude(pk=key.pk).exists()
    if custom_secret and not alias_taken:
        return InvalidInput("This key is already in use; choose another.", param="key", code="key_taken")
    return InvalidInput(f"key_alias={key.key_alias} already exists.", param="key_alias", code="key_alias_taken")


def _audit(action: str, key: VirtualKey, caller: Caller, **details: Any) -> None:
    """One log line per change, naming keys by their hint only."""
    team = key.team.team_id if key.team else None
    extra = "".join(f" {name}={value}" for name, value in details.items())
    log.info("key %s %s by %s (team=%s)%s", key.key_name, action, caller.user_id or caller.hint, team, extra)


def _usd(amount: Decimal) -> str:
    return f"{amount.normalize():f}"

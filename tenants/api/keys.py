"""Management API: /key/* routes (LiteLLM-compatible).

Field names and answers are LiteLLM's (docs/litellm-management-api.md §5); who may do what is
tenants/keymanagement.py's. A key (`sk-...`) or its digest is accepted wherever a key is named.
A key appears in an answer only once, when /key/generate or /key/regenerate makes it: elsewhere
keys are named by their digest (`token`) and shown as `sk-...abcd` (`key_name`).
"""

import math
import re
from collections.abc import Mapping
from typing import Any

from django.urls import path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import keyaccess, keymanagement, keys
from tenants.api.common import DurationField, ManagementView, MoneyField
from tenants.api.shapes import MAX_INT, KeyRowSerializer, LimitsInput, parse
from tenants.models import VirtualKey

# Printable ASCII without spaces, as generated keys are; LiteLLM's minimum length for custom keys.
_SECRET = re.compile(r"^sk-[\x21-\x7e]{13,253}$")


class SecretField(serializers.CharField):
    """A key the caller chooses: `sk-` and at least 16 characters. Errors never repeat it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not _SECRET.match(value):
            raise serializers.ValidationError(
                "A key must start with 'sk-' and be 16 to 256 printable characters without spaces."
            )
        return value


class KeyNameField(serializers.CharField):
    """A key already made, as `sk-...` or its 64-hex digest."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 256)
        super().__init__(**kwargs)


class ExpiryField(DurationField):
    """`duration`: how long from now the key works; null or "-1" for ever."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=16, required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        return "-1" if str(data).strip() == "-1" else super().to_internal_value(data)


class KeyFields(LimitsInput):
    """The settable fields of a key, as /key/generate, /key/update and /key/regenerate name them.

    Unknown fields are ignored, as LiteLLM ignores them. `""` reads as null where LiteLLM does.
    """

    BLANK_IS_NULL = ("max_budget", "soft_budget", "team_id")

    key_alias = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    duration = ExpiryField()
    soft_budget = MoneyField()
    blocked = serializers.BooleanField(required=False, allow_null=True)
    aliases = serializers.DictField(child=serializers.CharField(max_length=256), required=False, allow_null=True)
    permissions = serializers.DictField(required=False, allow_null=True)
    allowed_routes = serializers.ListField(child=serializers.CharField(max_length=256), required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=256), required=False, allow_null=True)
    user_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    team_id = serializers.CharField(max_length=255, required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            data = {name: None if value == "" and name in self.BLANK_IS_NULL else value for name, value in data.items()}
        return super().to_internal_value(data)


class KeySerializer(KeyRowSerializer):
    """A key as /key/info, /key/list and /key/block show it (LiteLLM's `LiteLLM_VerificationToken`)."""

    soft_budget = serializers.FloatField(read_only=True)
    status = serializers.SerializerMethodField()
    allowed_cache_controls = serializers.SerializerMethodField()
    model_spend = serializers.SerializerMethodField()
    model_max_budget = serializers.SerializerMethodField()
    budget_id = serializers.SerializerMethodField()
    organization_id = serializers.SerializerMethodField()

    def get_status(self, key: VirtualKey) -> str:
        """LiteLLM's words: blocked is "revoked"."""
        if key.blocked:
            return "revoked"
        return "expired" if key.expires is not None and key.expires <= timezone.now() else "active"

    def get_allowed_cache_controls(self, key: VirtualKey) -> list:
        return []

    def get_model_spend(self, key: VirtualKey) -> dict:
        return {}

    def get_model_max_budget(self, key: VirtualKey) -> dict:
        return {}

    def get_budget_id(self, key: VirtualKey) -> None:
        return None

    def get_organization_id(self, key: VirtualKey) -> None:
        return None


class KeyView(ManagementView):
    # JSON only, as LiteLLM: in a form-encoded body an absent boolean reads as false,
    # which would unblock a key on every /key/update.
    parser_classes = [JSONParser]


def generated(key: VirtualKey, secret: str) -> Response:
    """LiteLLM's GenerateKeyResponse: the key (shown this once), and the row it belongs to."""
    row = KeySerializer(key).data
    body = {"key": secret, **row, "token_id": key.token, "duration": None, "tags": key.metadata.get("tags")}
    return Response(body, headers={"Cache-Control": "no-store"})


class KeyGenerateView(KeyView):
    """POST /key/generate: a new key; the answer is the only place it is ever shown."""

    class Input(KeyFields):
        key = SecretField()

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        key, secret = keymanagement.generate(self.caller, secret=data.pop("key", None), **data)
        return generated(key, secret)


class KeyUpdateView(KeyView):
    """POST /key/update: change the fields sent on the key named by `key` (else by `key_alias`).

    LiteLLM answers with the columns it changed; Tollgate with the whole key row, which has them.
    """

    class Input(KeyFields):
        key = KeyNameField(required=False, allow_null=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("key") and not attrs.get("key_alias"):
                raise serializers.ValidationError({"key": "Name the key to update: `key` (or `key_alias`)."})
            return attrs

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        name = data.pop("key", None)
        keyaccess.require_writer(self.caller)
        readable = keyaccess.readable(self.caller)
        if name:
            key = keyaccess.find(name, among=readable)
        else:
            key = keyaccess.find_by_alias(data.pop("key_alias"), among=readable)
        keymanagement.update(self.caller, key, **data)
        return Response({"key": key.token, **KeySerializer(key).data})


class KeyDeleteView(KeyView):
    """POST /key/delete: `{"keys": [...]}` or `{"key_aliases": [...]}`; all of them or none.

    `deleted_keys` lists the digests deleted (LiteLLM echoes what was sent; a key is never echoed here).
    """

    class Input(serializers.Serializer):
        keys = serializers.ListField(child=KeyNameField(), required=False, allow_null=True, max_length=1000)
        key_aliases = serializers.ListField(
            child=serializers.CharField(max_length=255), required=False, allow_null=True, max_length=1000
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("keys") and not attrs.get("key_aliases"):
                raise serializers.ValidationError({"keys": "At least one of 'keys' or 'key_aliases' must be provided."})
            return attrs

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        if data.get("keys"):
            deleted = keymanagement.delete(self.caller, data["keys"])
            return Response({"deleted_keys": [key.token for key in deleted]})
        deleted = keymanagement.delete(self.caller, data["key_aliases"], by_alias=True)
        return Response({"deleted_keys": [key.key_alias for key in deleted]})


class KeyInfoView(KeyView):
    """GET /key/info[?key=]: the key named (default: the calling key), without its digest in `info`."""

    class Input(serializers.Serializer):
        key = KeyNameField(required=False, allow_blank=True)

    def get(self, request: Request) -> Response:
        data = parse(self.Input, request.query_params)
        name = data.get("key") or (self.caller.key.token if self.caller.key is not None else None)
        if name is None:
            raise serializers.ValidationError({"key": "The master key has no key record: pass ?key=."})
        key = keyaccess.find(name, among=keyaccess.readable(self.caller))
        info = dict(KeySerializer(key).data)
        del info["token"]
        return Response({"key": key.token, "info": info})


class KeyListView(KeyView):
    """GET /key/list: a page of digests (or whole keys with `return_full_object=true`).

    Admins see every key; anyone else their own keys and, as a team admin, their teams' keys
    (LiteLLM wants `include_team_keys=true` for those; Tollgate always includes them).
    """

    class Input(serializers.Serializer):
        page = serializers.IntegerField(min_value=1, max_value=MAX_INT, default=1)
        size = serializers.IntegerField(min_value=1, max_value=100, default=10)
        user_id = serializers.CharField(max_length=255, required=False)
        team_id = serializers.CharField(max_length=255, required=False)
        key_alias = serializers.CharField(max_length=255, required=False)
        key_hash = KeyNameField(required=False)
        return_full_object = serializers.BooleanField(default=False)
        include_team_keys = serializers.BooleanField(default=False)
        sort_by = serializers.ChoiceField(
            choices=("spend", "max_budget", "created_at", "updated_at", "token", "key_alias"), required=False
        )
        sort_order = serializers.ChoiceField(choices=("asc", "desc"), default="desc")

    def get(self, request: Request) -> Response:
        data = parse(self.Input, request.query_params)
        found = keyaccess.listable(self.caller)
        if data.get("user_id"):
            found = found.filter(user__user_id=data["user_id"])
        if data.get("team_id"):
            found = found.filter(team__team_id=data["team_id"])
        if data.get("key_alias"):
            found = found.filter(key_alias=data["key_alias"])
        if data.get("key_hash"):
            found = found.filter(token=keys.token_of(data["key_hash"]))
        sign = "-" if data["sort_order"] == "desc" else ""
        found = found.order_by(f"{sign}{data.get('sort_by', 'created_at')}", f"{sign}pk")
        total, page, size = found.count(), data["page"], data["size"]
        rows = found.select_related("team", "user")[(page - 1) * size : page * size]
        listed = KeySerializer(rows, many=True).data if data["return_full_object"] else [k.token for k in rows]
        return Response(
            {"keys": listed, "total_count": total, "current_page": page, "total_pages": math.ceil(total / size)}
        )


class KeyRegenerateView(KeyView):
    """POST /key/regenerate and /key/{key}/regenerate: a new secret for the key; the old one is
    refused at once. Update fields sent along apply as on /key/update; spend is kept."""

    class Input(KeyFields):
        key = KeyNameField(required=False, allow_null=True)
        new_key = SecretField()
        grace_period = serializers.CharField(max_length=16, required=False, allow_null=True, allow_blank=True)

        def validate_grace_period(self, value: str | None) -> None:
            if value:
                raise serializers.ValidationError(
                    "Tollgate refuses the old key at once; a grace period is not supported."
                )

    def post(self, request: Request, key: str | None = None) -> Response:
        data = parse(self.Input, request.data or {})
        data.pop("grace_period", None)
        name = data.pop("key", None) or key
        if not name:
            raise serializers.ValidationError({"key": "Name the key to regenerate, in the body or the path."})
        secret = data.pop("new_key", None)
        found = keyaccess.find_to_change(self.caller, name, action="regenerate")
        new_secret = keymanagement.regenerate(self.caller, found, secret=secret, **data)
        return generated(found, new_secret)


class KeyBlockView(KeyView):
    """POST /key/block: the key is refused (401) everywhere from now on; answers the whole key row."""

    blocked = True

    class Input(serializers.Serializer):
        key = KeyNameField()

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        action = "block" if self.blocked else "unblock"
        key = keyaccess.find_to_change(self.caller, data["key"], action=action)
        keymanagement.set_blocked(self.caller, key, self.blocked)
        return Response(KeySerializer(key).data)


class KeyUnblockView(KeyBlockView):
    """POST /key/unblock: the key works again; answers the whole key row."""

    blocked = False


urlpatterns = [
    path("key/generate", KeyGenerateView.as_view(), name="key-generate"),
    path("key/update", KeyUpdateView.as_view(), name="key-update"),
    path("key/delete", KeyDeleteView.as_view(), name="key-delete"),
    path("key/info", KeyInfoView.as_view(), name="key-info"),
    path("key/list", KeyListView.as_view(), name="key-list"),
    path("key/regenerate", KeyRegenerateView.as_view(), name="key-regenerate"),
    path("key/<path:key>/regenerate", KeyRegenerateView.as_view(), name="key-regenerate-path"),
    path("key/block", KeyBlockView.as_view(), name="key-block"),
    path("key/unblock", KeyUnblockView.as_view(), name="key-unblock"),
]

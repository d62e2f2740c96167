"""What the team and user routes share: LiteLLM's team, user and key rows, and the limit inputs.

Rows come out as LiteLLM's tables read (`LiteLLM_TeamTable`, `LiteLLM_UserTable`,
`LiteLLM_VerificationToken`): money as JSON numbers, empty text as null, the DB field
`allowed_models` as `models`. Deprecated or unsupported LiteLLM columns are present and empty,
so clients that read them find what they expect.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import prefetch_related_objects
from rest_framework import serializers

from tenants.api.common import DurationField, MoneyField
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey

MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1
# What `null` means for fields the database keeps non-null.
EMPTY = {
    "team_alias": "",
    "user_alias": "",
    "user_email": "",
    "budget_duration": "",
    "metadata": {},
    "allowed_models": [],
    "model_aliases": {},
    "team_member_permissions": [],
    "key_alias": "",
}


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate `data` (400 naming the first bad field); return the fields sent, as sent."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate `data` (400 naming the first bad field); return the fields sent, nulls made empty."""
    return nulls_made_empty(validated(serializer_class, data))


def nulls_made_empty(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: EMPTY[name] if value is None and name in EMPTY else value for name, value in fields.items()}


class LimitsInput(serializers.Serializer):
    """Budget, rate limits and the model list, as teams and users take them. Nothing is required."""

    models = serializers.ListField(
        child=serializers.CharField(max_length=256), source="allowed_models", required=False, allow_null=True
    )
    max_budget = MoneyField()
    budget_duration = DurationField(max_length=16, required=False, allow_null=True)
    tpm_limit = serializers.IntegerField(min_value=0, max_value=MAX_BIGINT, required=False, allow_null=True)
    rpm_limit = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False, allow_null=True)
    max_parallel_requests = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False, allow_null=True)
    metadata = serializers.DictField(required=False, allow_null=True)
    blocked = serializers.BooleanField(required=False)


class BlankAsNull(serializers.CharField):
    """Text the database keeps as "" and LiteLLM shows as null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: str) -> str | None:  # type: ignore[override]
        return value or None


class Limits(serializers.Serializer):
    """The budget and limit columns every row has."""

    max_budget = serializers.FloatField(read_only=True)
    spend = serializers.FloatField(read_only=True)
    budget_duration = BlankAsNull()
    budget_reset_at = serializers.DateTimeField(read_only=True)
    tpm_limit = serializers.IntegerField(read_only=True)
    rpm_limit = serializers.IntegerField(read_only=True)
    max_parallel_requests = serializers.IntegerField(read_only=True)
    models = serializers.ListField(source="allowed_models", read_only=True)
    metadata = serializers.DictField(read_only=True)
    blocked = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class TeamSerializer(Limits):
    """A team row with its members (`members_with_roles`, built from the memberships)."""

    team_id = serializers.CharField(read_only=True)
    team_alias = BlankAsNull()
    organization_id = serializers.SerializerMethodField()
    admins = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField()
    members_with_roles = serializers.SerializerMethodField()
    team_member_permissions = serializers.ListField(read_only=True)
    soft_budget = serializers.FloatField(read_only=True)
    model_aliases = serializers.DictField(read_only=True)
    litellm_model_table = serializers.SerializerMethodField()

    def get_organization_id(self, team: Team) -> None:
        return None

    def get_admins(self, team: Team) -> list:
        return []  # deprecated in LiteLLM: members_with_roles says who is admin

    def get_members(self, team: Team) -> list:
        return []

    def get_members_with_roles(self, team: Team) -> list[dict[str, Any]]:
        return [
            {"role": m.role, "user_id": m.user.user_id, "user_email": m.user.user_email or None}
            for m in _memberships(team)
        ]

    def get_litellm_model_table(self, team: Team) -> dict | None:
        return {"model_aliases": team.model_aliases} if team.model_aliases else None


class MembershipSerializer(serializers.Serializer):
    """LiteLLM's `LiteLLM_TeamMembership`: a member's spend and budget inside one team."""

    user_id = serializers.CharField(source="user.user_id", read_only=True)
    team_id = serializers.CharField(source="team.team_id", read_only=True)
    role = serializers.CharField(read_only=True)
    budget_id = serializers.SerializerMethodField()
    spend = serializers.FloatField(read_only=True)
    litellm_budget_table = serializers.SerializerMethodField()

    def get_budget_id(self, membership: TeamMembership) -> None:
        return None

    def get_litellm_budget_table(self, membership: TeamMembership) -> dict | None:
        if membership.max_budget_in_team is None:
            return None
        return {
            "max_budget": float(membership.max_budget_in_team),
            "budget_duration": membership.budget_duration or None,
        }


class KeyRowSerializer(Limits):
    """A key as /team/info and /user/info list it: the stored row, `token` (the digest) included."""

    token = serializers.CharField(read_only=True)
    key_name = serializers.CharField(read_only=True)
    key_alias = BlankAsNull()
    expires = serializers.DateTimeField(read_only=True)
    aliases = serializers.DictField(read_only=True)
    config = serializers.SerializerMethodField()
    permissions = serializers.DictField(read_only=True)
    allowed_routes = serializers.ListField(read_only=True)
    user_id = serializers.SerializerMethodField()
    team_id = serializers.SerializerMethodField()
    team_alias = serializers.SerializerMethodField()
    created_by = BlankAsNull()
    updated_by = BlankAsNull()

    def get_config(self, key: VirtualKey) -> dict:
        return {}

    def get_user_id(self, key: VirtualKey) -> str | None:
        return key.user.user_id if key.user else None

    def get_team_id(self, key: VirtualKey) -> str | None:
        return key.team.team_id if key.team else None

    def get_team_alias(self, key: VirtualKey) -> str | None:
        return (key.team.team_alias or None) if key.team else None


class UserSerializer(Limits):
    """A user row. `teams` lists team ids; context `team_pks` narrows it to the teams the reader sees."""

    user_id = serializers.CharField(read_only=True)
    user_alias = BlankAsNull()
    user_email = BlankAsNull()
    user_role = serializers.CharField(read_only=True)
    teams = serializers.SerializerMethodField()
    organization_id = serializers.SerializerMethodField()
    model_spend = serializers.SerializerMethodField()
    model_max_budget = serializers.SerializerMethodField()

    def get_teams(self, user: InternalUser) -> list[str]:
        visible = self.context.get("team_pks")
        return [m.team.team_id for m in _memberships(user) if visible is None or m.team_id in visible]

    def get_organization_id(self, user: InternalUser) -> None:
        return None

    def get_model_spend(self, user: InternalUser) -> dict:
        return {}

    def get_model_max_budget(self, user: InternalUser) -> dict:
        return {}


def _memberships(owner: Team | InternalUser) -> list[TeamMembership]:
    return sorted(owner.memberships.all(), key=lambda m: m.pk)


def load_memberships(rows: Iterable[Team | InternalUser]) -> None:
    """Fetch the memberships of all the rows (both ends) in two queries, before they are shaped."""
    prefetch_related_objects(list(rows), "memberships__user", "memberships__team")

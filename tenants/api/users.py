"""Management API: /user/* routes (LiteLLM-compatible).

Creating, changing and deleting users is for proxy admins. /user/info is for admins, the user
themself, and the admins of a team the user is in; a user the caller shares no team with
answers 404 exactly as a missing one does.
"""

from typing import Any
from urllib.parse import unquote

from django.db.models import Prefetch
from django.urls import path
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import roles, users
from tenants.api.common import DurationField, IsProxyAdmin, ManagementView, MoneyField
from tenants.api.shapes import (
    KeyRowSerializer,
    LimitsInput,
    TeamSerializer,
    UserSerializer,
    load_memberships,
    nulls_made_empty,
    parse,
    validated,
)
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey


class UserFields(LimitsInput):
    """The settable columns of a user, as /user/new and /user/update name them."""

    user_email = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    user_alias = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    user_role = serializers.ChoiceField(choices=InternalUser.Role.choices, required=False, allow_null=True)


class SeatSerializer(serializers.Serializer):
    """One entry of /user/new's `teams` given as an object."""

    team_id = serializers.CharField(max_length=255)
    user_role = serializers.ChoiceField(choices=TeamMembership.Role.choices, default=TeamMembership.Role.USER)
    max_budget_in_team = MoneyField()


class UserNewView(ManagementView):
    """POST /user/new: create a user, seat them in teams, and (by default) make their first key."""

    permission_classes = [IsProxyAdmin]

    class Input(UserFields):
        user_id = serializers.CharField(max_length=255, required=False, allow_null=True)
        teams = serializers.ListField(child=serializers.JSONField(), required=False, allow_null=True)
        auto_create_key = serializers.BooleanField(default=True)
        key_alias = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
        duration = DurationField(max_length=16, required=False, allow_null=True)

        def validate_teams(self, value: list[Any] | None) -> list[users.Seat]:
            seats = []
            for item in value or []:
                if isinstance(item, str) and item:
                    seats.append(users.Seat(team_id=item))
                    continue
                seat = SeatSerializer(data=item)
                if not isinstance(item, dict) or not seat.is_valid():
                    raise serializers.ValidationError(
                        seat.errors if isinstance(item, dict) else "Each team is a team_id or {team_id, user_role}."
                    )
                data = seat.validated_data
                seats.append(users.Seat(data["team_id"], data["user_role"], data.get("max_budget_in_team")))
            return seats

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        if data.get("user_role") is None:
            data.pop("user_role", None)
        seats = data.pop("teams", None) or []
        user, key, secret = users.create(by=self.caller.user_id or "", seats=seats, **data)
        load_memberships([user])
        return Response({**UserSerializer(user).data, **new_key_fields(key, secret)})


class UserInfoView(ManagementView):
    """GET /user/info[?user_id=]: the user, their keys and teams.

    Without `user_id`: the caller's own; for a proxy admin, every key and every team, as LiteLLM.
    A `+` in the query string stays a `+` (user ids are often emails), as in LiteLLM.
    """

    class Input(serializers.Serializer):
        user_id = serializers.CharField(max_length=255, required=False)

    def get(self, request: Request) -> Response:
        data = parse(self.Input, _raw_query(request, "user_id"))
        caller = self.caller
        if "user_id" not in data and caller.is_admin:
            own = (
                InternalUser.objects.filter(pk=caller.key.user_pk).first()
                if caller.key and caller.key.user_pk
                else None
            )
            return self.info(caller.user_id, own, VirtualKey.objects.all(), Team.objects.all(), team_pks=None)
        if "user_id" not in data:
            if caller.key is None or caller.key.user_id is None:
                raise serializers.ValidationError({"user_id": "This key has no user: name one with ?user_id=."})
            data["user_id"] = caller.key.user_id
        user = users.find(data["user_id"])
        if not roles.may_read_user(caller, user):
            if roles.member_teams(caller).filter(memberships__user=user).exists():
                raise PermissionDenied("Only a proxy admin, the user or an admin of their team may read a user.")
            raise users.not_found(user.user_id)
        user_keys = VirtualKey.objects.filter(user=user)
        user_teams = Team.objects.filter(memberships__user=user)
        team_pks = None
        if not caller.is_admin and caller.key is not None and caller.key.user_pk != user.pk:
            administered = roles.administered_teams(caller)
            user_keys = user_keys.filter(team__in=administered)
            user_teams = user_teams.filter(pk__in=administered.values("pk"))
            team_pks = set(administered.values_list("pk", flat=True))
        return self.info(user.user_id, user, user_keys, user_teams, team_pks=team_pks)

    def info(self, user_id: str | None, user: InternalUser | None, user_keys, user_teams, *, team_pks) -> Response:
        team_list = list(
            user_teams.distinct().prefetch_related(
                Prefetch("memberships", queryset=TeamMembership.objects.select_related("user", "team").order_by("pk"))
            )
        )
        if user is not None:
            load_memberships([user])
        return Response(
            {
                "user_id": user_id,
                "user_info": UserSerializer(user, context={"team_pks": team_pks}).data if user else None,
                "keys": KeyRowSerializer(user_keys.select_related("user", "team"), many=True).data,
                "teams": TeamSerializer(team_list, many=True).data,
            }
        )


class UserUpdateView(ManagementView):
    """POST /user/update: change the fields sent, found by user_id (else user_email).

    As in LiteLLM, `null` and empty lists or objects leave a field as it is, except
    `max_budget: null`, which removes the budget.
    """

    permission_classes = [IsProxyAdmin]

    class Input(UserFields):
        user_id = serializers.CharField(max_length=255, required=False, allow_null=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("user_id") and not attrs.get("user_email"):
                raise serializers.ValidationError({"user_id": "Give user_id or user_email."})
            return attrs

    def post(self, request: Request) -> Response:
        data = validated(self.Input, request.data)
        user_id = data.pop("user_id", None)
        user = users.find(user_id) if user_id else users.find_by_email(data.pop("user_email"))
        changes = {
            name: value
            for name, value in data.items()
            if (value is not None or name == "max_budget") and value not in ([], {})
        }
        user = users.update(user, **nulls_made_empty(changes))
        load_memberships([user])
        return Response({"user_id": user.user_id, "data": UserSerializer(user).data})


class UserDeleteView(ManagementView):
    """POST /user/delete: delete the users and their keys; answer how many (a bare number)."""

    permission_classes = [IsProxyAdmin]

    class Input(serializers.Serializer):
        user_ids = serializers.ListField(child=serializers.CharField(max_length=255), min_length=1)

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        return Response(users.delete(users.find_all(data["user_ids"])))


def new_key_fields(key: VirtualKey | None, secret: str) -> dict[str, Any]:
    """The /key/generate fields of /user/new's answer; `key` is shown here once ("" without a key)."""
    fields: dict[str, Any] = {
        "key": secret,
        "token": None,
        "token_id": None,
        "key_name": None,
        "key_alias": None,
        "expires": None,
        "duration": None,
        "aliases": {},
        "config": {},
        "permissions": {},
        "team_id": None,
        "budget_id": None,
        "created_by": None,
        "updated_by": None,
    }
    if key is not None:
        fields.update(
            token=key.token,
            token_id=key.token,
            key_name=key.key_name,
            key_alias=key.key_alias or None,
            expires=serializers.DateTimeField().to_representation(key.expires) if key.expires else None,
            created_by=key.created_by or None,
            updated_by=key.updated_by or None,
        )
    return fields


def _raw_query(request: Request, name: str) -> dict[str, str]:
    """`name` from the query string with `+` kept as a plus sign."""
    for part in request.META.get("QUERY_STRING", "").split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            return {name: unquote(value)}
    return {}


urlpatterns = [
    path("user/new", UserNewView.as_view()),
    path("user/info", UserInfoView.as_view()),
    path("user/update", UserUpdateView.as_view()),
    path("user/delete", UserDeleteView.as_view()),
]

"""Management API: /team/* routes (LiteLLM-compatible).

Creating, changing and deleting teams is for proxy admins. A team's admins add and remove its
members. Its members (and its keys) read it. A team the caller does not belong to answers 404
exactly as a missing one does.
"""

from typing import Any

from django.db.models import Prefetch, prefetch_related_objects
from django.urls import path
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import roles, teams
from tenants.api.common import IsProxyAdmin, ManagementView, MoneyField
from tenants.api.shapes import (
    KeyRowSerializer,
    LimitsInput,
    MembershipSerializer,
    TeamSerializer,
    UserSerializer,
    load_memberships,
    parse,
)
from tenants.auth import Caller
from tenants.models import Team, TeamMembership, VirtualKey


class MemberSerializer(serializers.Serializer):
    """LiteLLM's `Member`: a role, and the user by id, by email, or both."""

    role = serializers.ChoiceField(choices=TeamMembership.Role.choices)
    user_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    user_email = serializers.CharField(max_length=255, required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("user_id") and not attrs.get("user_email"):
            raise serializers.ValidationError("A member needs a user_id or a user_email.")
        return attrs


class TeamFields(LimitsInput):
    """The settable columns of a team, as /team/new and /team/update name them."""

    team_alias = serializers.CharField(max_length=255, required=False, allow_null=True, allow_blank=True)
    soft_budget = MoneyField()
    model_aliases = serializers.DictField(child=serializers.CharField(max_length=256), required=False, allow_null=True)
    team_member_permissions = serializers.ListField(
        child=serializers.CharField(max_length=256), required=False, allow_null=True
    )


class TeamNewView(ManagementView):
    """POST /team/new: create a team with its members; the caller's user joins as admin."""

    permission_classes = [IsProxyAdmin]

    class Input(TeamFields):
        team_id = serializers.CharField(max_length=255, required=False, allow_null=True)
        members_with_roles = MemberSerializer(many=True, required=False, allow_null=True)

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        members = [teams.Member(**m) for m in data.pop("members_with_roles", None) or []]
        team = teams.create(by=self.caller, members=members, **data)
        return Response(team_row(team))


class TeamUpdateView(ManagementView):
    """POST /team/update: change the fields sent; `null` clears a limit. Members have their own routes."""

    permission_classes = [IsProxyAdmin]

    class Input(TeamFields):
        team_id = serializers.CharField(max_length=255)

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        team = teams.update(teams.find(data.pop("team_id"), visible_to=self.caller), **data)
        return Response({"team_id": team.team_id, "data": team_row(team)})


class TeamDeleteView(ManagementView):
    """POST /team/delete: delete the teams and all their keys; nothing is deleted if one is unknown."""

    permission_classes = [IsProxyAdmin]

    class Input(serializers.Serializer):
        team_ids = serializers.ListField(child=serializers.CharField(max_length=255), min_length=1)

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        found = teams.find_all(data["team_ids"])
        teams.delete(found)
        return Response({"deleted_teams": [t.team_id for t in found]})


class TeamInfoView(ManagementView):
    """GET /team/info?team_id=: the team, its keys and memberships (admins, members, its keys)."""

    class Input(serializers.Serializer):
        team_id = serializers.CharField(max_length=255)

    def get(self, request: Request) -> Response:
        data = parse(self.Input, request.query_params)
        team = teams.find(data["team_id"], visible_to=self.caller)
        load_team_details([team])
        return Response(
            {
                "team_id": team.team_id,
                "team_info": {**team_row(team), "team_member_budget_table": None},
                "keys": KeyRowSerializer(team.keys.all(), many=True).data,
                "team_memberships": MembershipSerializer(team.memberships.all(), many=True).data,
            }
        )


class TeamListView(ManagementView):
    """GET /team/list[?user_id=]: a bare array of teams, each with its memberships and keys.

    A non-admin sees the teams they belong to, and may only name themselves as `user_id`.
    """

    class Input(serializers.Serializer):
        user_id = serializers.CharField(max_length=255, required=False)
        organization_id = serializers.CharField(max_length=255, required=False)  # no organisations: ignored

    def get(self, request: Request) -> Response:
        data = parse(self.Input, request.query_params)
        user_id = data.get("user_id")
        if user_id and not self.caller.is_admin and user_id != self.caller.user_id:
            raise PermissionDenied("Only a proxy admin may list another user's teams.")
        found = roles.member_teams(self.caller)
        if user_id:
            found = found.filter(memberships__user__user_id=user_id)
        found_list = list(found.distinct())
        load_team_details(found_list)
        return Response(
            [
                {
                    **team_row(team),
                    "team_memberships": MembershipSerializer(team.memberships.all(), many=True).data,
                    "keys": KeyRowSerializer(team.keys.all(), many=True).data,
                }
                for team in found_list
            ]
        )


class MemberAddView(ManagementView):
    """POST /team/member_add: add one member or a list (proxy admin or the team's admin)."""

    class Input(serializers.Serializer):
        team_id = serializers.CharField(max_length=255)
        member = serializers.JSONField()
        max_budget_in_team = MoneyField()

        def validate_member(self, value: Any) -> list[teams.Member]:
            members = value if isinstance(value, list) else [value]
            if not members or not all(isinstance(m, dict) for m in members):
                raise serializers.ValidationError("Give a member object or a non-empty list of them.")
            checked = [MemberSerializer(data=m) for m in members]
            for member in checked:
                if not member.is_valid():
                    raise serializers.ValidationError(member.errors)
            return [teams.Member(**m.validated_data) for m in checked]

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        team = teams.find(data["team_id"], visible_to=self.caller)
        require_team_admin(self.caller, team)
        added = teams.add_members(team, data["member"], max_budget_in_team=data.get("max_budget_in_team"))
        users = [m.user for m in added]
        load_memberships(users)
        visible = None if self.caller.is_admin else set(roles.member_teams(self.caller).values_list("pk", flat=True))
        return Response(
            {
                **team_row(team),
                "updated_users": UserSerializer(users, many=True, context={"team_pks": visible}).data,
                "updated_team_memberships": MembershipSerializer(added, many=True).data,
            }
        )


class MemberDeleteView(ManagementView):
    """POST /team/member_delete: take a user out of the team (their keys stay)."""

    class Input(serializers.Serializer):
        team_id = serializers.CharField(max_length=255)
        user_id = serializers.CharField(max_length=255, required=False, allow_null=True)
        user_email = serializers.CharField(max_length=255, required=False, allow_null=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("user_id") and not attrs.get("user_email"):
                raise serializers.ValidationError({"user_id": "Give user_id or user_email."})
            return attrs

    def post(self, request: Request) -> Response:
        data = parse(self.Input, request.data)
        team = teams.find(data["team_id"], visible_to=self.caller)
        require_team_admin(self.caller, team)
        teams.remove_member(teams.membership_of(team, user_id=data.get("user_id"), user_email=data.get("user_email")))
        return Response(team_row(team))


def require_team_admin(caller: Caller, team: Team) -> None:
    if not roles.is_team_admin(caller, team):
        raise PermissionDenied(f"Only a proxy admin or an admin of team {team.team_id} may do this.")


def team_row(team: Team) -> dict[str, Any]:
    load_memberships([team])
    return TeamSerializer(team).data


def load_team_details(found: list[Team]) -> None:
    """Fetch the teams' memberships and keys in a fixed number of queries."""
    prefetch_related_objects(
        found,
        Prefetch("memberships", queryset=TeamMembership.objects.select_related("user", "team").order_by("pk")),
        Prefetch("keys", queryset=VirtualKey.objects.select_related("user", "team")),
    )


urlpatterns = [
    path("team/new", TeamNewView.as_view()),
    path("team/update", TeamUpdateView.as_view()),
    path("team/delete", TeamDeleteView.as_view()),
    path("team/info", TeamInfoView.as_view()),
    path("team/list", TeamListView.as_view()),
    path("team/member_add", MemberAddView.as_view()),
    path("team/member_delete", MemberDeleteView.as_view()),
]

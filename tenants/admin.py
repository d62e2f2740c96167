"""Keys, users and teams in the Django admin. Digests never render; keys show as `sk-...abcd`.

Changes call the same domain functions as the management API where one exists (keys:
tenants/admin_keys.py; deleting teams and users), and otherwise bump the tenants generation
themselves, so caches everywhere see the change (tenants/generation.py). Every change is in the
audit log (tenants/admin_audit.py), which is browsable here too.
"""

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from tenants import generation, teams, users
from tenants.admin_audit import AuditedAdmin, AuditEntryAdmin
from tenants.admin_keys import VirtualKeyAdmin
from tenants.models import InternalUser, MasterKey, Team, TeamMembership, VirtualKey

__all__ = ["AuditEntryAdmin", "VirtualKeyAdmin"]

admin.site.register(VirtualKey, VirtualKeyAdmin)


@admin.register(MasterKey)
class MasterKeyAdmin(admin.ModelAdmin):
    """Where the master key comes from; only its hint is ever shown."""

    list_display = ["hint", "reference", "source", "updated_at"]
    exclude = ["digest"]
    readonly_fields = ["hint", "reference", "source", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TenantAdmin(AuditedAdmin):
    """Teams and users: a saved change drops cached key records; a new budget period starts now."""

    def changed(self) -> None:
        generation.bump()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if "budget_duration" in form.changed_data:
            fields = {"budget_duration": obj.budget_duration}
            teams.set_budget_reset(fields)
            obj.budget_reset_at = fields["budget_reset_at"]
        super().save_model(request, obj, form, change)


class MembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    fields = ["user", "role", "max_budget_in_team", "budget_duration", "spend"]
    readonly_fields = ["spend"]
    raw_id_fields = ["user"]


class UserMembershipInline(MembershipInline):
    fields = ["team", "role", "max_budget_in_team", "budget_duration", "spend"]
    raw_id_fields = ["team"]


@admin.register(Team)
class TeamAdmin(TenantAdmin):
    list_display = ["team_alias", "team_id", "spend", "max_budget", "budget_duration", "members", "blocked"]
    list_filter = ["blocked"]
    search_fields = ["team_alias", "team_id"]
    readonly_fields = ["spend", "budget_reset_at", "created_at", "updated_at"]
    exclude = ["reserved", "in_flight", "window_minute", "window_requests", "window_tokens"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def members(self, team: Team) -> int:
        return team.member_count  # type: ignore[attr-defined]

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        teams.delete([obj])  # with its keys, recorded there

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        teams.delete(list(queryset))


@admin.register(InternalUser)
class InternalUserAdmin(TenantAdmin):
    list_display = ["user_id", "user_email", "user_role", "spend", "max_budget", "blocked"]
    list_filter = ["user_role", "blocked"]
    search_fields = ["user_id", "user_email", "user_alias"]
    readonly_fields = ["spend", "budget_reset_at", "created_at", "updated_at"]
    exclude = ["reserved", "in_flight", "window_minute", "window_requests", "window_tokens"]
    raw_id_fields = ["account"]
    inlines = [UserMembershipInline]

    def delete_model(self, request: HttpRequest, obj: InternalUser) -> None:
        users.delete([obj])  # with their keys, recorded there

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[InternalUser]) -> None:
        users.delete(list(queryset))

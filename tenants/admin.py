"""Keys, users and teams in the Django admin. Digests never render; keys show as `sk-...abcd`.

Admin actions call the same domain functions as the management API, so caches everywhere see
the change (tenants/generation.py). Generating a key from the admin (shown once) comes with the
dashboard work; until then keys are made through /key/generate.
"""

from django.contrib import admin, messages

from tenants import keys
from tenants.models import InternalUser, MasterKey, Team, TeamMembership, VirtualKey


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


@admin.register(VirtualKey)
class VirtualKeyAdmin(admin.ModelAdmin):
    list_display = ["key_name", "key_alias", "team", "user", "spend", "max_budget", "blocked", "expires"]
    list_filter = ["blocked"]
    search_fields = ["key_name", "key_alias", "team__team_alias", "team__team_id", "user__user_id"]
    list_select_related = ["team", "user"]
    raw_id_fields = ["team", "user"]
    exclude = ["token"]
    readonly_fields = ["key_name", "spend", "created_by", "updated_by", "created_at", "updated_at"]
    actions = ["block", "unblock"]

    def has_add_permission(self, request) -> bool:
        return False  # a key is shown once at creation: /key/generate (admin page with the dashboard work)

    @admin.action(description="Block selected keys")
    def block(self, request, queryset) -> None:
        for key in queryset:
            keys.set_blocked(key, True, by=request.user.get_username())
        messages.success(request, f"Blocked {queryset.count()} key(s).")

    @admin.action(description="Unblock selected keys")
    def unblock(self, request, queryset) -> None:
        for key in queryset:
            keys.set_blocked(key, False, by=request.user.get_username())
        messages.success(request, f"Unblocked {queryset.count()} key(s).")


class MembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["team_alias", "team_id", "spend", "max_budget", "budget_duration", "blocked"]
    list_filter = ["blocked"]
    search_fields = ["team_alias", "team_id"]
    readonly_fields = ["spend", "created_at", "updated_at"]
    inlines = [MembershipInline]


@admin.register(InternalUser)
class InternalUserAdmin(admin.ModelAdmin):
    list_display = ["user_id", "user_email", "user_role", "spend", "max_budget", "blocked"]
    list_filter = ["user_role", "blocked"]
    search_fields = ["user_id", "user_email", "user_alias"]
    readonly_fields = ["spend", "created_at", "updated_at"]
    raw_id_fields = ["account"]

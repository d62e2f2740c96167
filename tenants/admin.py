from django.contrib import admin

from tenants.models import MasterKey


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

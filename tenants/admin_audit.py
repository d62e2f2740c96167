"""Admin changes in the audit log, and the log itself in the admin (read-only, filterable).

`AuditedAdmin` attributes whatever its views change to the signed-in admin (tenants/audit.py),
so domain functions called from an action record the admin as actor, and records the plain
saves and deletes no domain function makes. An admin whose save goes through a domain function
(keys) overrides save_model and leaves the recording to it.
"""

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from tenants import audit
from tenants.models import AuditEntry


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose changes land in the audit log, attributed to the signed-in admin."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with audit.recording(request):
            return super().changeform_view(request, *args, **kwargs)

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with audit.recording(request):  # actions run here
            return super().changelist_view(request, *args, **kwargs)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with audit.recording(request):
            return super().delete_view(request, *args, **kwargs)

    def changed(self) -> None:
        """Called after every recorded change: tenants admins drop the key caches here."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = audit.snapshot(type(obj)._default_manager.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        audit.record("update" if change else "create", obj, before=before, after=audit.snapshot(obj))
        self.changed()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit.record("delete", obj, before=audit.snapshot(obj))
        super().delete_model(request, obj)
        self.changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            audit.record("delete", obj, before=audit.snapshot(obj))
        super().delete_queryset(request, queryset)
        self.changed()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Inline rows (a team's memberships): each one added, changed or removed is an entry."""
        stored = {
            f.instance.pk: audit.snapshot(type(f.instance)._default_manager.get(pk=f.instance.pk))
            for f in formset.forms
            if f.instance.pk and f.has_changed()
        }
        deleted = [(f.instance, audit.snapshot(f.instance)) for f in formset.deleted_forms if f.instance.pk]
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit.record("create", obj, after=audit.snapshot(obj))
        for obj, _ in formset.changed_objects:
            audit.record("update", obj, before=stored.get(obj.pk, {}), after=audit.snapshot(obj))
        for obj, before in deleted:
            audit.record("delete", obj, before=before)
        if formset.new_objects or formset.changed_objects or deleted:
            self.changed()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "via", "action", "object_type", "object_id", "object_repr", "request_id"]
    list_filter = ["via", "action", "object_type"]
    search_fields = ["actor", "=object_id", "object_repr", "=request_id"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor",
        "via",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "request_id",
        "before_shown",
        "after_shown",
    ]
    readonly_fields = fields  # type: ignore[assignment]
    show_full_result_count = False

    @admin.display(description="before")
    def before_shown(self, entry: AuditEntry) -> str:
        return _pretty(entry.before)

    @admin.display(description="after")
    def after_shown(self, entry: AuditEntry) -> str:
        return _pretty(entry.after)


def _pretty(value: Any) -> str:
    if value is None:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))

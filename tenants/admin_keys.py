"""Virtual keys in the admin: generate (the key shown once), block, regenerate, edit, delete.

Every change goes through tenants/keymanagement.py, as the management API's do, so the same
rules hold (a key's models and budget within its team's), caches drop the change at once and
the audit log records it. A key exists in clear only in the one response that makes it: the
page that shows it is rendered directly (never through a redirect, a message or the session)
and marked no-store; afterwards only its hint, `sk-...abcd`, is shown.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from tenants import audit, keymanagement
from tenants.admin_audit import AuditedAdmin
from tenants.auth import Caller
from tenants.durations import parse_duration
from tenants.exceptions import TenantError
from tenants.models import InternalUser, Team, VirtualKey

# The API's names for form fields where they differ (an error's `param` → the field to show it on).
FIELD_OF_PARAM = {"models": "allowed_models", "team_id": "team", "user_id": "user"}
GENERATED_TEMPLATE = "admin/tenants/virtualkey/generated.html"


@dataclass(frozen=True)
class AdminCaller(Caller):
    """The signed-in admin as domain functions know callers: a proxy admin without a key, named
    `admin:<username>` where a key records who made or changed it (created_by, updated_by)."""

    username: str = ""

    @property
    def user_id(self) -> str:
        return f"admin:{self.username}"


def admin_caller(request: HttpRequest) -> AdminCaller:
    username = request.user.get_username()
    return AdminCaller(kind="admin", hint=f"admin {username}", username=username)


def show_refusal(form: forms.BaseForm, error: TenantError) -> None:
    """Put a domain refusal next to the field it names, else on top of the form."""
    field = FIELD_OF_PARAM.get(error.param or "", error.param)
    form.add_error(field if field in form.fields else None, error.message)


def duration_field(help_text: str) -> forms.CharField:
    return forms.CharField(max_length=16, required=False, help_text=help_text, validators=[_valid_duration])


def _valid_duration(value: str) -> None:
    try:
        parse_duration(value)
    except ValueError as e:
        raise forms.ValidationError(str(e)) from None


class GenerateKeyForm(forms.Form):
    """What /key/generate takes that an operator sets by hand; empty fields are not sent."""

    team = forms.ModelChoiceField(Team.objects.all(), required=False)
    user = forms.ModelChoiceField(InternalUser.objects.all(), required=False, help_text="Must be in the team.")
    key_alias = forms.CharField(max_length=255, required=False)
    models = forms.CharField(
        required=False, help_text="Model aliases, comma-separated; empty: whatever the team (or user) may use."
    )
    max_budget = forms.DecimalField(min_value=Decimal(0), max_digits=20, decimal_places=10, required=False)
    budget_duration = duration_field("30s, 1h, 1d, 30d, 1mo …; empty: the budget never resets.")
    rpm_limit = forms.IntegerField(min_value=0, required=False, label="Requests per minute")
    tpm_limit = forms.IntegerField(min_value=0, required=False, label="Tokens per minute")
    max_parallel_requests = forms.IntegerField(min_value=0, required=False)
    duration = duration_field("How long the key works, e.g. 30d; empty: until revoked.")

    def api_fields(self) -> dict[str, Any]:
        """The cleaned form as keymanagement.generate's keyword arguments."""
        data = dict(self.cleaned_data)
        fields: dict[str, Any] = {
            "team_id": data.pop("team").team_id if data.get("team") else None,
            "user_id": data.pop("user").user_id if data.get("user") else None,
        }
        models = [m.strip() for m in (data.pop("models") or "").split(",") if m.strip()]
        if models:
            fields["allowed_models"] = models
        fields.update({name: value for name, value in data.items() if value not in (None, "")})
        return fields


class KeyChangeForm(forms.ModelForm):
    """Edits a key's limits; refused values are shown on their field before anything is saved."""

    class Meta:
        model = VirtualKey
        fields = [
            "key_alias",
            "allowed_models",
            "max_budget",
            "soft_budget",
            "budget_duration",
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "expires",
            "blocked",
            "aliases",
            "metadata",
            "permissions",
            "allowed_routes",
        ]

    def clean_budget_duration(self) -> str:
        value = self.cleaned_data["budget_duration"]
        if value:
            _valid_duration(value)
        return value

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.instance.pk and not self.errors:
            try:
                keymanagement.check(AdminCaller(kind="admin", hint="admin"), self.instance, self.changes())
            except TenantError as e:
                show_refusal(self, e)
        return cleaned

    def changes(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.changed_data if name in self.cleaned_data}


class VirtualKeyAdmin(AuditedAdmin):
    form = KeyChangeForm
    list_display = ["key_name", "key_alias", "team", "user", "spend", "max_budget", "blocked", "expires"]
    list_filter = ["blocked", "team"]
    search_fields = ["key_name", "key_alias", "team__team_alias", "team__team_id", "user__user_id"]
    list_select_related = ["team", "user"]
    readonly_fields = [
        "key_name",
        "team",
        "user",
        "spend",
        "budget_reset_at",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["key_name", "key_alias", "team", "user", "blocked", "expires"]}),
        (
            "Budget and limits",
            {
                "fields": [
                    "allowed_models",
                    "max_budget",
                    "soft_budget",
                    "budget_duration",
                    "budget_reset_at",
                    "spend",
                    "rpm_limit",
                    "tpm_limit",
                    "max_parallel_requests",
                ]
            },
        ),
        ("More", {"classes": ["collapse"], "fields": ["aliases", "metadata", "permissions", "allowed_routes"]}),
        ("History", {"fields": ["created_by", "updated_by", "created_at", "updated_at"]}),
    ]
    actions = ["block", "unblock", "regenerate"]

    def get_urls(self) -> list:
        generate = path("generate/", self.admin_site.admin_view(self.generate_view), name="tenants_virtualkey_generate")
        return [generate, *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        return self.generate_view(request)  # "Add key" is "Generate key": a key is made, not typed

    def generate_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the form; POST: make the key and show it, this once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = GenerateKeyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            with audit.recording(request):
                try:
                    key, secret = keymanagement.generate(admin_caller(request), **form.api_fields())
                except TenantError as e:
                    show_refusal(form, e)
                else:
                    return self.show_once(request, [(key, secret)], title="Key generated")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Generate key",
            "form": form,
        }
        return TemplateResponse(request, "admin/tenants/virtualkey/generate.html", context)

    def show_once(self, request: HttpRequest, made: list[tuple[VirtualKey, str]], *, title: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, "made": made}
        response = TemplateResponse(request, GENERATED_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response

    def save_model(self, request: HttpRequest, obj: VirtualKey, form: Any, change: bool) -> None:
        stored = VirtualKey.objects.select_related("team", "user").get(pk=obj.pk)
        keymanagement.update(admin_caller(request), stored, **form.changes())

    def delete_model(self, request: HttpRequest, obj: VirtualKey) -> None:
        keymanagement.delete(admin_caller(request), [obj.token])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        keymanagement.delete(admin_caller(request), list(queryset.values_list("token", flat=True)))

    @admin.action(description="Block selected keys")
    def block(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset.select_related("team"):
            keymanagement.set_blocked(admin_caller(request), key, True)
        messages.success(request, f"Blocked {len(queryset)} key(s).")

    @admin.action(description="Unblock selected keys")
    def unblock(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> None:
        for key in queryset.select_related("team"):
            keymanagement.set_blocked(admin_caller(request), key, False)
        messages.success(request, f"Unblocked {len(queryset)} key(s).")

    @admin.action(description="Regenerate selected keys (the old keys stop working)")
    def regenerate(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> HttpResponse:
        made = [(key, keymanagement.regenerate(admin_caller(request), key)) for key in queryset.select_related("team")]
        return self.show_once(request, made, title="Keys regenerated")

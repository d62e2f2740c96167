"""Deployments in the Django admin: add, edit, disable, test; secrets are write-only.

Each provider's settings have their own fieldset (a change page shows only its provider's);
secrets are typed into write-only inputs and sealed into `api_key` / `credentials`, other
provider settings (region, project, tenant) go into `params` as a config file's would. The list
shows what the router knows now: cooldowns and this minute's use (proxy/deployment_state.py).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from proxy import connection, crypto, deployment_state
from proxy.configfile import SECRET_PARAMS
from proxy.deployments import NUMBER_FIELDS
from proxy.models import Deployment, LoadedConfig
from tenants import audit
from tenants.admin_audit import AuditedAdmin

CREDENTIAL_FIELDS = sorted(SECRET_PARAMS - {"api_key"})
# Provider settings that are not secrets: kept in Deployment.params under the config file's names.
PARAM_FIELDS = [
    "aws_region_name",
    "aws_role_name",
    "aws_session_name",
    "aws_bedrock_runtime_endpoint",
    "vertex_project",
    "vertex_location",
    "tenant_id",
    "client_id",
]
ENDPOINT = ["api_base", "api_version", "api_key", "clear_api_key"]
# (title, providers it applies to, fields, description); a field appears in one fieldset only.
PROVIDER_FIELDSETS = [
    (
        "Endpoint and key",
        {
            "mistral",
            "codestral",
            "text-completion-codestral",
            "openai",
            "custom_openai",
            "hosted_vllm",
            "azure",
            "anthropic",
            "gemini",
            "vertex_ai",
            "bedrock",
        },
        ENDPOINT,
        "Mistral / Codestral: the key, and api_base only to override https://api.mistral.ai/v1 "
        "(codestral.mistral.ai for Codestral keys). OpenAI-compatible: api_base is the server's /v1 URL. "
        "Azure: api_base is the resource URL, api_version e.g. 2024-10-21. Anthropic, Gemini: the key.",
    ),
    (
        "Azure (Entra ID instead of a key)",
        {"azure"},
        ["tenant_id", "client_id", "client_secret", "azure_ad_token"],
        "Client credentials, or a ready token; leave empty when the api_key above is used.",
    ),
    (
        "Bedrock",
        {"bedrock"},
        [
            "aws_region_name",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_role_name",
            "aws_session_name",
            "aws_bedrock_runtime_endpoint",
        ],
        "A region and either access keys or a role to assume; with neither, the instance's AWS credentials.",
    ),
    (
        "Vertex AI",
        {"vertex_ai"},
        ["vertex_project", "vertex_location", "vertex_credentials"],
        "vertex_credentials: the service-account JSON (or os.environ/NAME); empty uses the default credentials.",
    ),
]


class SecretInput(forms.PasswordInput):
    """Never renders the stored value; an empty submission keeps it."""

    def __init__(self) -> None:
        super().__init__(render_value=False, attrs={"autocomplete": "new-password", "size": 60})


def write_only(label: str = "") -> forms.CharField:
    return forms.CharField(
        required=False,
        widget=SecretInput(),
        label=label or None,
        help_text="Write-only; empty keeps the current value.",
    )


class DeploymentForm(forms.ModelForm):
    # Declared on the class (the admin's fieldsets may only name declared fields), one per
    # configfile.SECRET_PARAMS entry besides api_key.
    aws_access_key_id = write_only("aws_access_key_id")
    aws_secret_access_key = write_only("aws_secret_access_key")
    aws_session_token = write_only("aws_session_token")
    azure_ad_token = write_only("azure_ad_token")
    client_secret = write_only("client_secret")
    vertex_credentials = write_only("vertex_credentials")
    api_key = forms.CharField(
        required=False,
        widget=SecretInput(),
        help_text="A provider key (stored encrypted, never shown again) or os.environ/NAME. "
        "Leave empty to keep the current value.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")
    aws_region_name = forms.CharField(required=False, label="aws_region_name")
    aws_role_name = forms.CharField(required=False, label="aws_role_name", help_text="An IAM role ARN to assume.")
    aws_session_name = forms.CharField(required=False, label="aws_session_name")
    aws_bedrock_runtime_endpoint = forms.CharField(required=False, label="aws_bedrock_runtime_endpoint")
    vertex_project = forms.CharField(required=False, label="vertex_project")
    vertex_location = forms.CharField(required=False, label="vertex_location", help_text="e.g. europe-west4")
    tenant_id = forms.CharField(required=False, label="tenant_id")
    client_id = forms.CharField(required=False, label="client_id")

    class Meta:
        model = Deployment
        fields = [  # credentials are edited through the write-only fields above, never as JSON
            "model_name",
            "litellm_model",
            "api_base",
            "api_version",
            "enabled",
            "mock_response",
            *NUMBER_FIELDS,
            "params",
            "model_info",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in PARAM_FIELDS:
            if name in self.fields:
                self.fields[name].initial = (self.instance.params or {}).get(name, "")
        if self.instance.pk and "api_key" in self.fields:
            self.fields["api_key"].help_text = f"Current: {crypto.describe(self.instance.api_key)}. " + str(
                self.fields["api_key"].help_text
            )

    def clean_litellm_model(self) -> str:
        value = self.cleaned_data["litellm_model"].strip()
        if "/" not in value and not self.data.get("mock_response"):
            raise forms.ValidationError("Write provider/model-id, e.g. mistral/mistral-small-latest.")
        return value

    def save(self, commit: bool = True) -> Deployment:
        deployment = super().save(commit=False)
        stored = Deployment.objects.filter(pk=deployment.pk).first() if deployment.pk else None
        typed = self.cleaned_data.get("api_key") or ""
        if self.cleaned_data.get("clear_api_key"):
            deployment.api_key = ""
        elif typed:
            deployment.api_key = typed
        elif stored is not None:
            deployment.api_key = stored.api_key
        credentials = dict(stored.credentials) if stored else {}
        for name in CREDENTIAL_FIELDS:
            if self.cleaned_data.get(name):
                credentials[name] = self.cleaned_data[name]
        deployment.credentials = credentials
        params = dict(deployment.params or {})
        for name in PARAM_FIELDS:
            if name in self.cleaned_data:  # only the fields its fieldsets showed
                if self.cleaned_data[name]:
                    params[name] = self.cleaned_data[name].strip()
                else:
                    params.pop(name, None)
        deployment.params = params
        if commit:
            deployment.save()
        return deployment


@admin.register(Deployment)
class DeploymentAdmin(AuditedAdmin):
    form = DeploymentForm
    list_display = [
        "model_name",
        "provider_shown",
        "litellm_model",
        "weight",
        "order",
        "rpm_shown",
        "tpm_shown",
        "state",
        "enabled",
        "api_key_shown",
        "source",
    ]
    list_filter = ["enabled", "source"]
    search_fields = ["model_name", "litellm_model", "api_base"]
    readonly_fields = ["source", "config_file", "created_at", "updated_at"]
    actions = ["enable", "disable", "test_connection"]

    def get_fieldsets(self, request: HttpRequest, obj: Deployment | None = None) -> list:
        provider = obj.provider if obj is not None else ""
        known = any(provider in applies for _, applies, _, _ in PROVIDER_FIELDSETS)
        fieldsets: list[Any] = [
            (None, {"fields": ["model_name", "litellm_model", "enabled", "mock_response"]}),
        ]
        for title, applies, fields, description in PROVIDER_FIELDSETS:
            if known and provider not in applies:
                continue
            classes = [] if known or title == "Endpoint and key" else ["collapse"]
            fieldsets.append((title, {"fields": fields, "description": description, "classes": classes}))
        fieldsets += [
            (
                "Routing and limits",
                {"fields": ["rpm", "tpm", "weight", "order", "timeout", "stream_timeout", "max_retries"]},
            ),
            ("Prices (override the price book)", {"fields": ["input_cost_per_token", "output_cost_per_token"]}),
            ("More", {"classes": ["collapse"], "fields": ["params", "model_info"]}),
            ("Origin", {"fields": ["source", "config_file", "created_at", "updated_at"]}),
        ]
        return _each_field_once(fieldsets)

    def get_urls(self) -> list:
        test = path(
            "<int:pk>/test-connection/",
            self.admin_site.admin_view(self.test_connection_view),
            name="proxy_deployment_test_connection",
        )
        return [test, *super().get_urls()]

    @admin.display(description="provider")
    def provider_shown(self, deployment: Deployment) -> str:
        return "mock" if deployment.mock_response else deployment.provider or "—"

    @admin.display(description="rpm (this minute)")
    def rpm_shown(self, deployment: Deployment) -> str:
        return _use(deployment_state.minute_use(deployment.pk)[0], deployment.rpm)

    @admin.display(description="tpm (this minute)")
    def tpm_shown(self, deployment: Deployment) -> str:
        return _use(deployment_state.minute_use(deployment.pk)[1], deployment.tpm)

    @admin.display(description="state")
    def state(self, deployment: Deployment) -> str:
        left = deployment_state.cooldown_left(deployment.pk)
        if left > 0:
            return f"cooling down ({left:.0f}s)"
        return "unhealthy (last health check)" if _last_health().get(deployment.pk) is False else "healthy"

    @admin.display(description="API key")
    def api_key_shown(self, deployment: Deployment) -> str:
        return crypto.describe(deployment.api_key)

    @admin.action(description="Enable selected deployments")
    def enable(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._set_enabled(queryset, True)
        messages.success(request, f"Enabled {queryset.count()} deployment(s).")

    @admin.action(description="Disable selected deployments")
    def disable(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        self._set_enabled(queryset, False)
        messages.success(request, f"Disabled {queryset.count()} deployment(s).")

    def _set_enabled(self, queryset: QuerySet[Deployment], enabled: bool) -> None:
        for deployment in queryset:
            before = audit.snapshot(deployment, ["enabled"])
            deployment.enabled = enabled
            deployment.save(update_fields=["enabled", "updated_at"])
            audit.record("update", deployment, before=before, after=audit.snapshot(deployment, ["enabled"]))

    @admin.action(description="Test connection (one minimal real call each)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Deployment]) -> None:
        for deployment in queryset:
            report(request, deployment)

    def test_connection_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST from the change page's button: test, then back to the page with the outcome."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        return _test_and_return(request, get_object_or_404(Deployment, pk=pk))


@require_POST
def _test_and_return(request: HttpRequest, deployment: Deployment) -> HttpResponse:
    report(request, deployment)
    return HttpResponseRedirect(reverse("admin:proxy_deployment_change", args=[deployment.pk]))


def report(request: HttpRequest, deployment: Deployment) -> None:
    """Test one deployment and say how it went as an admin message."""
    outcome = connection.check(deployment)
    text = f"{deployment.model_name} ({deployment.litellm_model}): {outcome}"
    (messages.success if outcome.ok else messages.error)(request, text)


def _last_health() -> dict[int, bool]:
    """The background health check's last verdicts (proxy/health.py), where that module offers them."""
    try:
        from proxy import health
    except ImportError:
        return {}
    report = getattr(health, "last_report", None)
    return report() if report is not None else {}


def _use(used: int, limit: int | None) -> str:
    return f"{used} / {limit}" if limit is not None else (str(used) if used else "—")


def _each_field_once(fieldsets: list) -> list:
    """Drop a field a fieldset earlier already shows: the form would post it twice."""
    seen: set[str] = set()
    kept = []
    for title, options in fieldsets:
        fields = [f for f in options["fields"] if f not in seen]
        seen.update(fields)
        if fields:
            kept.append((title, {**options, "fields": fields}))
    return kept


@admin.register(LoadedConfig)
class LoadedConfigAdmin(admin.ModelAdmin):
    """What was loaded from which file, read-only: edit the file and reload it to change it."""

    list_display = ["path", "loaded_at", "sha256"]
    exclude = ["master_key", "environment_variables"]
    readonly_fields = [
        "path",
        "sha256",
        "loaded_at",
        "general_settings",
        "litellm_settings",
        "router_settings",
        "warnings",
        "environment_names",
    ]

    @admin.display(description="environment_variables (names only)")
    def environment_names(self, config: LoadedConfig) -> str:
        return ", ".join(sorted(config.environment_variables)) or "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

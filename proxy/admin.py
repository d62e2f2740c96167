"""Deployments in the Django admin: add, edit, disable; secrets are write-only."""

from django import forms
from django.contrib import admin, messages

from proxy import crypto
from proxy.configfile import SECRET_PARAMS
from proxy.deployments import NUMBER_FIELDS
from proxy.models import Deployment, LoadedConfig

CREDENTIAL_FIELDS = sorted(SECRET_PARAMS - {"api_key"})


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
        if self.instance.pk:
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
        if commit:
            deployment.save()
        return deployment


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    form = DeploymentForm
    list_display = ["model_name", "litellm_model", "api_base", "api_key_shown", "enabled", "source", "updated_at"]
    list_filter = ["enabled", "source"]
    search_fields = ["model_name", "litellm_model", "api_base"]
    readonly_fields = ["source", "config_file", "created_at", "updated_at"]
    actions = ["enable", "disable"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "model_name",
                    "litellm_model",
                    "api_base",
                    "api_version",
                    "api_key",
                    "clear_api_key",
                    "enabled",
                    "mock_response",
                ]
            },
        ),
        ("Provider credentials", {"classes": ["collapse"], "fields": list(CREDENTIAL_FIELDS)}),
        (
            "Routing and limits",
            {"fields": ["rpm", "tpm", "weight", "order", "timeout", "stream_timeout", "max_retries"]},
        ),
        ("Prices (override the price book)", {"fields": ["input_cost_per_token", "output_cost_per_token"]}),
        ("More", {"classes": ["collapse"], "fields": ["params", "model_info"]}),
        ("Origin", {"fields": ["source", "config_file", "created_at", "updated_at"]}),
    ]

    @admin.display(description="API key")
    def api_key_shown(self, deployment: Deployment) -> str:
        return crypto.describe(deployment.api_key)

    @admin.action(description="Enable selected deployments")
    def enable(self, request, queryset) -> None:
        for deployment in queryset:
            deployment.enabled = True
            deployment.save(update_fields=["enabled", "updated_at"])
        messages.success(request, f"Enabled {queryset.count()} deployment(s).")

    @admin.action(description="Disable selected deployments")
    def disable(self, request, queryset) -> None:
        for deployment in queryset:
            deployment.enabled = False
            deployment.save(update_fields=["enabled", "updated_at"])
        messages.success(request, f"Disabled {queryset.count()} deployment(s).")


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

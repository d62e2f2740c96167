"""Model deployments: the admin-managed model aliases and where each one is served."""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from proxy import crypto
from proxy.fields import SealedField, SealedJSONField


class Deployment(models.Model):
    """One upstream model that callers reach through an alias: a LiteLLM `model_list` entry.

    Deployments sharing a `model_name` form one load-balanced group. Rows loaded from a config
    file are marked as such and rewritten when the file is loaded again; an admin may still
    disable them. Provider secrets are sealed (proxy/crypto.py) and never rendered back.
    """

    class Source(models.TextChoices):
        CONFIG = "config", "config file"
        ADMIN = "admin", "admin"

    model_name = models.CharField(max_length=255, db_index=True, help_text="The alias callers send as `model`.")
    litellm_model = models.CharField(
        "model", max_length=255, help_text="provider/model-id, e.g. mistral/mistral-small-latest."
    )
    api_base = models.CharField(max_length=500, blank=True, help_text="Overrides the provider's URL.")
    api_version = models.CharField(max_length=64, blank=True)
    api_key = SealedField(blank=True, help_text="A key (stored encrypted) or os.environ/NAME.")
    credentials = SealedJSONField(
        default=dict, blank=True, help_text="Other provider secrets by name, stored encrypted."
    )
    params = models.JSONField(default=dict, blank=True, help_text="Other litellm_params, kept as given.")
    model_info = models.JSONField(default=dict, blank=True)

    rpm = models.PositiveIntegerField(null=True, blank=True)
    tpm = models.PositiveIntegerField(null=True, blank=True)
    weight = models.FloatField(null=True, blank=True)
    order = models.PositiveIntegerField(null=True, blank=True)
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds for a whole answer.")
    stream_timeout = models.FloatField(null=True, blank=True, help_text="Seconds between stream chunks.")
    max_retries = models.PositiveIntegerField(null=True, blank=True)
    input_cost_per_token = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True)
    output_cost_per_token = models.DecimalField(max_digits=20, decimal_places=12, null=True, blank=True)
    mock_response = models.TextField(blank=True, help_text="Answer with this text instead of calling out.")

    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN, editable=False)
    config_file = models.CharField(max_length=500, blank=True, editable=False)
    config_id = models.CharField(max_length=255, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_name", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["config_file", "config_id"],
                condition=Q(source="config"),
                name="proxy_deployment_one_row_per_config_entry",
            ),
            # Rows added through /model/new keep their model_info.id here: one row per id.
            models.UniqueConstraint(
                fields=["config_id"],
                condition=Q(source="admin") & ~Q(config_id=""),
                name="proxy_deployment_one_row_per_admin_id",
            ),
            models.CheckConstraint(
                condition=Q(litellm_model__contains="/") | ~Q(mock_response=""),
                name="proxy_deployment_model_has_provider",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} → {self.litellm_model}"

    @property
    def provider(self) -> str:
        """The `provider/` prefix of the model, e.g. "mistral"."""
        return self.litellm_model.split("/", 1)[0] if "/" in self.litellm_model else ""

    @property
    def provider_model(self) -> str:
        """The model id the provider knows, e.g. "mistral-small-latest"."""
        return self.litellm_model.split("/", 1)[1] if "/" in self.litellm_model else self.litellm_model

    def price(self) -> tuple[Decimal | None, Decimal | None]:
        return self.input_cost_per_token, self.output_cost_per_token

    def api_key_display(self) -> str:
        return crypto.describe(self.api_key)


class LoadedConfig(models.Model):
    """A config file as last loaded: the settings the workers act on, secrets sealed.

    `runproxy` loads the file once, in one process; gunicorn's workers read this row instead of
    the file, so every worker of every instance sees the same settings.
    """

    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now=True)
    master_key = SealedField(blank=True)
    environment_variables = SealedJSONField(default=dict, blank=True)
    general_settings = models.JSONField(default=dict, blank=True)
    litellm_settings = models.JSONField(default=dict, blank=True)
    router_settings = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        get_latest_by = "loaded_at"

    def __str__(self) -> str:
        return self.path

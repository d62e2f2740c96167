"""Write a checked config file into the database: deployments, settings, the master key.

Loading is idempotent and keeps what admins decided: an entry loaded before keeps its row
(matched by `model_info.id`, else by a stable hash of alias, model and api_base), so a
deployment an admin disabled stays disabled; rows from this file that left it are deleted;
rows added in the admin are never touched.
"""

import logging

from django.db import transaction

from proxy import crypto
from proxy.configfile import ConfigFile, DeploymentEntry
from proxy.models import Deployment, LoadedConfig
from tenants import keys
from tenants.models import MasterKey

log = logging.getLogger(__name__)

# Deployment columns holding configfile.NUMBER_PARAMS and INT_PARAMS, unset when the entry omits them.
NUMBER_FIELDS = (
    "rpm",
    "tpm",
    "weight",
    "order",
    "timeout",
    "stream_timeout",
    "max_retries",
    "input_cost_per_token",
    "output_cost_per_token",
)


@transaction.atomic
def load(config: ConfigFile) -> dict[str, int]:
    """Apply `config`; return counts of created, updated and removed deployments."""
    existing = {
        d.config_id: d for d in Deployment.objects.filter(source=Deployment.Source.CONFIG, config_file=config.path)
    }
    created = updated = 0
    for entry in config.deployments:
        row = existing.pop(entry.config_id, None)
        if row is None:
            row = Deployment(source=Deployment.Source.CONFIG, config_file=config.path, config_id=entry.config_id)
            created += 1
        else:
            updated += 1
        apply(row, entry)
        row.save()
    removed = len(existing)
    Deployment.objects.filter(pk__in=[d.pk for d in existing.values()]).delete()

    LoadedConfig.objects.update_or_create(
        path=config.path,
        defaults={
            "sha256": config.sha256,
            # Only a reference: the key itself is kept as a digest (tenants.MasterKey), never recoverable.
            "master_key": config.master_key if crypto.is_reference(config.master_key) else "",
            "environment_variables": config.environment_variables,
            "general_settings": {k: v for k, v in config.general_settings.items() if k != "master_key"},
            "litellm_settings": config.litellm_settings,
            "router_settings": config.router_settings,
            "warnings": config.warnings,
        },
    )
    _store_master_key(config)
    return {"created": created, "updated": updated, "removed": removed}


def apply(row: Deployment, entry: DeploymentEntry) -> None:
    """Set every field a checked entry configures on `row`, without saving it.

    Secrets are assigned as given; the sealed fields encrypt them on save.
    """
    row.model_name = entry.model_name
    row.litellm_model = entry.model
    row.api_base = entry.api_base
    row.api_version = entry.api_version
    row.api_key = entry.api_key
    row.credentials = entry.credentials
    row.mock_response = entry.mock_response
    row.params = entry.params
    row.model_info = entry.model_info
    for name in NUMBER_FIELDS:
        setattr(row, name, entry.numbers.get(name))


def _store_master_key(config: ConfigFile) -> None:
    value = config.master_key
    if not value:
        MasterKey.objects.filter(source=config.path).delete()  # the file no longer sets one
        return
    reference = value if crypto.is_reference(value) else ""
    try:
        plain = crypto.resolve(value, config.environment_variables)
    except crypto.SecretUnavailable as e:
        log.warning("general_settings.master_key: %s; the master key is not set", e)
        MasterKey.objects.filter(source=config.path).delete()  # the previous key must not stay valid
        return
    MasterKey.objects.all().delete()
    MasterKey.objects.create(digest=keys.digest(plain), hint=keys.hint(plain), reference=reference, source=config.path)

"""Alias → the deployments that serve it, and which one takes this call.

Each worker keeps the enabled deployments in memory and checks a cheap fingerprint of the table
(row count, last change) at most every TOLLGATE_DEPLOYMENT_CACHE_SECONDS, so an admin's change
reaches every worker within that time without a query per request. Deployments sharing a
`model_name` form a group; within the lowest `order` tier one is picked at random, weighted by
`weight` (else `rpm`). Retries, fallbacks and cooldowns come with the router issue.
"""

import random
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max

from config.database import release_connection
from proxy import crypto, providers
from proxy.exceptions import UnknownModel
from proxy.models import Deployment, LoadedConfig
from proxy.providers.base import Adapter
from tenants.auth import Caller


@dataclass(frozen=True)
class Route:
    deployment: Deployment
    adapter: Adapter


@dataclass(frozen=True)
class ModelGroup:
    alias: str
    routes: tuple[Route, ...]

    def pick(self) -> Route:
        """Choose the deployment for one call: lowest order tier first, weighted at random."""
        tier = min(r.deployment.order or 0 for r in self.routes)
        candidates = [r for r in self.routes if (r.deployment.order or 0) == tier]
        if len(candidates) == 1:
            return candidates[0]
        weights = [r.deployment.weight or r.deployment.rpm or 1 for r in candidates]
        return random.choices(candidates, weights=weights)[0]

    @property
    def first(self) -> Deployment:
        return self.routes[0].deployment


@dataclass
class Table:
    fingerprint: tuple = ()
    checked_at: float = 0.0
    groups: dict[str, ModelGroup] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)


_table = Table()
_lock = threading.Lock()


def resolve(asked: str, caller: Caller | None = None) -> ModelGroup:
    """Return the group serving `asked` for this caller.

    The caller's aliases map the name first; then ModelNotAllowed (403) when the key may not use
    it, UnknownModel (404) when no enabled deployment serves it.
    """
    alias = caller.model_for(asked) if caller is not None else asked
    if caller is not None:
        caller.check_model(alias)
    group = table().groups.get(alias)
    if group is None:
        raise UnknownModel(
            f"The model '{asked}' does not exist. GET /v1/models lists the models you may use.",
            param="model",
            code="model_not_found",
        )
    return group


def groups(caller: Caller | None = None) -> list[ModelGroup]:
    return [g for alias, g in sorted(table().groups.items()) if caller is None or caller.may_use(alias)]


def invalidate() -> None:
    """Re-read the deployments on this worker's next request (others notice within the cache time)."""
    _table.checked_at = 0.0


def table() -> Table:
    global _table
    current = _table
    if time.monotonic() - current.checked_at < settings.TOLLGATE_DEPLOYMENT_CACHE_SECONDS:
        return current
    with _lock:
        if _table is not current:  # another green thread refreshed it meanwhile
            return _table
        fingerprint = _fingerprint()
        if fingerprint != current.fingerprint:
            _table = _load(fingerprint)
        else:
            current.checked_at = time.monotonic()
        release_connection()
        return _table


def _fingerprint() -> tuple:
    deployments = Deployment.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
    config = LoadedConfig.objects.aggregate(changed=Max("loaded_at"))
    return deployments["n"], deployments["changed"], config["changed"]


def _load(fingerprint: tuple) -> Table:
    config = LoadedConfig.objects.order_by("-loaded_at").first()
    environment = _environment(config)
    routes: dict[str, list[Route]] = {}
    for deployment in Deployment.objects.filter(enabled=True).order_by("model_name", "order", "id"):
        adapter = providers.adapter_for(deployment, environment)
        routes.setdefault(deployment.model_name, []).append(Route(deployment, adapter))
    groups = {alias: ModelGroup(alias, tuple(rs)) for alias, rs in routes.items()}
    return Table(fingerprint=fingerprint, checked_at=time.monotonic(), groups=groups, environment=environment)


def _environment(config: LoadedConfig | None) -> dict[str, str]:
    if config is None:
        return {}
    return {name: crypto.unseal(value) for name, value in (config.environment_variables or {}).items()}

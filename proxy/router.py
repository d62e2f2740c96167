"""Alias → the deployments that serve it, and which one takes this call.

Each worker keeps the enabled deployments in memory and checks a cheap fingerprint of the table
(row count, last change) at most every TOLLGATE_DEPLOYMENT_CACHE_SECONDS, so an admin's change
reaches every worker within that time without a query per request. Deployments sharing a
`model_name` form a group; each attempt picks one of the available deployments of the lowest
`order` tier by the configured strategy (proxy/strategies.py). The retry and fallback loop around
the picks is proxy/attempts.py.
"""

import math
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max

from config.database import release_connection
from proxy import crypto, deployment_state, policy, providers, strategies
from proxy.exceptions import NoDeploymentAvailable, UnknownModel
from proxy.models import Deployment, LoadedConfig
from proxy.providers.base import Adapter
from tenants.auth import Caller


@dataclass(frozen=True)
class Route:
    deployment: Deployment
    adapter: Adapter

    def available(self) -> bool:
        """Not cooling down, and with room under the deployment's own rpm/tpm this minute."""
        pk = self.deployment.pk
        if deployment_state.cooldown_left(pk) > 0:
            return False
        return deployment_state.has_room(pk, self.deployment.rpm, self.deployment.tpm)


@dataclass(frozen=True)
class ModelGroup:
    alias: str
    routes: tuple[Route, ...]

    def pick(self, strategy: str = "simple-shuffle", *, tried: frozenset[int] = frozenset()) -> Route:
        """Choose the deployment for one attempt (proxy/strategies.py), or raise NoDeploymentAvailable.

        Left out: deployments cooling down, those at their rpm/tpm this minute, and those this
        call already tried (`tried`) while others remain. Of the rest, the lowest `order` tier.
        """
        available = [r for r in self.routes if r.available()]
        untried = [r for r in available if r.deployment.pk not in tried]
        candidates = untried or available
        if not candidates:
            raise self._exhausted()
        tier = min(r.deployment.order or 0 for r in candidates)
        return strategies.choose(strategy, [r for r in candidates if (r.deployment.order or 0) == tier])

    @property
    def first(self) -> Deployment:
        return self.routes[0].deployment

    def _exhausted(self) -> NoDeploymentAvailable:
        waits = [deployment_state.cooldown_left(r.deployment.pk) for r in self.routes]
        wait = min((w for w in waits if w > 0), default=0.0)
        retry_after = max(1, math.ceil(wait)) if wait else max(1, 61 - int(time.time() % 60))
        why = "cooling down after failures" if wait else "at their rpm/tpm limit for this minute"
        error = NoDeploymentAvailable(
            f"No deployment of '{self.alias}' can take a request now: all are {why}. Try again in {retry_after} s.",
            code="no_deployment_available",
        )
        error.retry_after = retry_after
        return error


@dataclass
class Table:
    fingerprint: tuple = ()
    checked_at: float = 0.0
    groups: dict[str, ModelGroup] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    rules: policy.Policy | None = None  # the config's router settings; None until loaded
    general_settings: dict = field(default_factory=dict)  # the config's, for background health checks


_table = Table()
_lock = threading.Lock()


def resolve(asked: str, caller: Caller | None = None, *, within: "Table | None" = None) -> ModelGroup:
    """Return the group serving `asked` for this caller.

    The caller's aliases map the name first; then ModelNotAllowed (403) when the key may not use
    it, UnknownModel (404) when no enabled deployment serves it. `within` is a table already read.
    """
    alias = caller.model_for(asked) if caller is not None else asked
    if caller is not None:
        caller.check_model(alias)
    group = (within or table()).groups.get(alias)
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
    rules = policy.read(config.router_settings or {}, config.litellm_settings or {}) if config else policy.read({}, {})
    routes: dict[str, list[Route]] = {}
    for deployment in Deployment.objects.filter(enabled=True).order_by("model_name", "order", "id"):
        # The config's global timeouts fill in for deployments that set none (in memory only).
        deployment.timeout = deployment.timeout or rules.timeout
        deployment.stream_timeout = deployment.stream_timeout or rules.stream_timeout
        adapter = providers.adapter_for(deployment, environment)
        routes.setdefault(deployment.model_name, []).append(Route(deployment, adapter))
    groups = {alias: ModelGroup(alias, tuple(rs)) for alias, rs in routes.items()}
    return Table(
        fingerprint=fingerprint,
        checked_at=time.monotonic(),
        groups=groups,
        environment=environment,
        rules=rules,
        general_settings=(config.general_settings or {}) if config else {},
    )


def _environment(config: LoadedConfig | None) -> dict[str, str]:
    if config is None:
        return {}
    return {name: crypto.unseal(value) for name, value in (config.environment_variables or {}).items()}

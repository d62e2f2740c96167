"""Test a deployment's connection: one real, minimal call through its adapter, for the admin.

A chat model is asked for one token, an embedding model to embed one word, with a short
timeout, so an operator learns within seconds whether the URL, the key and the model id work.
The call bypasses routing, limits and billing (it is the operator's, not a tenant's), and any
secret of the deployment is masked out of the error before it is shown.
"""

from dataclasses import dataclass

from proxy import health, providers, router
from proxy.models import Deployment

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    seconds: float
    message: str  # the error, secrets masked; "" on success

    def __str__(self) -> str:
        if self.ok:
            return f"answered in {self.seconds * 1000:.0f} ms"
        return f"failed after {self.seconds * 1000:.0f} ms: {self.message}"


def check(deployment: Deployment, *, timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """Make one minimal call to `deployment` as it is stored (proxy/health.py's probe); never raise."""
    try:
        adapter = providers.adapter_for(deployment, router.table().environment)
    except Exception as e:  # a provider library's own error: still an answer for the operator
        return Outcome(False, 0.0, health.masked(f"{type(e).__name__}: {e}", deployment, {}))
    probe = health.probe(router.Route(deployment, adapter), timeout)
    return Outcome(probe.healthy, probe.seconds, probe.error)

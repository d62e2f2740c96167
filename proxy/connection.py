"""Test a deployment's connection: one real, minimal call through its adapter, for the admin.

A chat model is asked for one token, an embedding model to embed one word, with a short
timeout, so an operator learns within seconds whether the URL, the key and the model id work.
The call bypasses routing, limits and billing (it is the operator's, not a tenant's), and any
secret of the deployment is masked out of the error before it is shown.
"""

import copy
import time
from dataclasses import dataclass

from proxy import catalog, crypto, providers, router
from proxy.exceptions import ProxyError
from proxy.models import Deployment
from tenants import audit

TIMEOUT_SECONDS = 10.0
PROMPT = [{"role": "user", "content": "ping"}]


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
    """Make one minimal call to `deployment` as it is stored; never raise."""
    trial = copy.copy(deployment)  # the short timeout is for this call only
    trial.timeout = min(deployment.timeout or timeout, timeout)
    trial.stream_timeout = trial.timeout
    environment = router.table().environment
    started = time.monotonic()
    try:
        adapter = providers.adapter_for(trial, environment)
        group = router.ModelGroup(trial.model_name, (router.Route(trial, adapter),))
        if catalog.mode(group) == "embedding":
            adapter.embeddings({"model": trial.model_name, "input": ["ping"]})
        else:
            adapter.chat({"model": trial.model_name, "messages": PROMPT, "max_tokens": 1})
    except ProxyError as e:
        return Outcome(False, time.monotonic() - started, masked(e.message, deployment, environment))
    except Exception as e:  # a provider library's own error: still an answer for the operator
        return Outcome(False, time.monotonic() - started, masked(f"{type(e).__name__}: {e}", deployment, environment))
    return Outcome(True, time.monotonic() - started, "")


def masked(message: str, deployment: Deployment, environment: dict[str, str]) -> str:
    """`message` without the deployment's secrets (in case a provider echoes one) or anything key-like."""
    for stored in [deployment.api_key, *deployment.credentials.values()]:
        try:
            plain = crypto.resolve(str(stored), environment) if stored else ""
        except crypto.SecretUnavailable:
            continue
        if len(plain) >= 4:
            message = message.replace(plain, audit.REDACTED)
    return audit.redact(message)[:500]

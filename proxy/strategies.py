"""Which deployment of a model group takes a call: LiteLLM's routing strategies.

Every strategy chooses among the candidates the router left in (enabled, not cooling down, with
room under their rpm/tpm, in the lowest `order` tier that has any):
- `simple-shuffle` (default): at random, weighted by `weight`, else `rpm`, else evenly;
- `least-busy`: the fewest requests in flight (this worker's count), ties at random;
- `latency-based-routing`: the lowest moving-average latency; deployments not yet measured first,
  so each gets measured;
- `usage-based-routing` (and `-v2`): the fewest tokens used this minute (shared through Redis).
"""

import random
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from proxy import deployment_state


class Candidate(Protocol):
    @property
    def deployment(self): ...


C = TypeVar("C", bound=Candidate)


def choose(strategy: str, candidates: Sequence[C]) -> C:
    if len(candidates) == 1:
        return candidates[0]
    return STRATEGIES.get(strategy, simple_shuffle)(candidates)


def simple_shuffle(candidates: Sequence[Candidate]) -> Candidate:
    weights = [c.deployment.weight or c.deployment.rpm or 1 for c in candidates]
    return random.choices(candidates, weights=weights)[0]


def least_busy(candidates: Sequence[Candidate]) -> Candidate:
    return _lowest(candidates, lambda c: deployment_state.in_flight(c.deployment.pk))


def latency_based(candidates: Sequence[Candidate]) -> Candidate:
    unmeasured = [c for c in candidates if deployment_state.latency(c.deployment.pk) is None]
    if unmeasured:
        return random.choice(unmeasured)
    return _lowest(candidates, lambda c: deployment_state.latency(c.deployment.pk) or 0.0)


def usage_based(candidates: Sequence[Candidate]) -> Candidate:
    return _lowest(candidates, lambda c: deployment_state.minute_use(c.deployment.pk)[1])


def _lowest(candidates: Sequence[Candidate], measure: Callable[[Candidate], float]) -> Candidate:
    scored = [(measure(c), c) for c in candidates]
    best = min(score for score, _ in scored)
    return random.choice([c for score, c in scored if score == best])


STRATEGIES: dict[str, Callable[[Sequence[Any]], Any]] = {
    "simple-shuffle": simple_shuffle,
    "least-busy": least_busy,
    "latency-based-routing": latency_based,
    "usage-based-routing": usage_based,
    "usage-based-routing-v2": usage_based,
}

"""How the router behaves, read from a LiteLLM config's `router_settings` and `litellm_settings`.

LiteLLM reads most of these in either section (the Router's own arguments, or the module-level
`litellm.*` settings the proxy copies into it); `router_settings` wins where both set one.
Defaults are LiteLLM's, so a config behaves here as it did there.
"""

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

STRATEGIES = ("simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing", "usage-based-routing-v2")

# Every key this module acts on, for the config loader's "kept but not acted on" warnings.
ROUTER_KEYS = {
    "routing_strategy",
    "num_retries",
    "retry_after",
    "timeout",
    "stream_timeout",
    "allowed_fails",
    "cooldown_time",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "default_fallbacks",
    "disable_cooldowns",
}
LITELLM_KEYS = ROUTER_KEYS | {"request_timeout"}


@dataclass(frozen=True)
class Policy:
    strategy: str = "simple-shuffle"
    num_retries: int = 2  # the proxy's default (TOLLGATE_NUM_RETRIES): three attempts in all
    retry_after: float = 0.0  # the least time to wait before a retry, seconds
    timeout: float | None = None  # a whole answer, when the deployment sets none
    stream_timeout: float | None = None  # between stream chunks, when the deployment sets none
    allowed_fails: int = 3  # failures of one deployment within a minute before it cools down
    cooldown_time: float = 5.0  # seconds a failing deployment is left out
    cooldowns: bool = True
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    content_policy_fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_fallbacks: tuple[str, ...] = ()

    @property
    def counts_tokens(self) -> bool:
        """Whether routing reads every deployment's tokens per minute (usage-based strategies)."""
        return self.strategy.startswith("usage-based")

    def fallbacks_for(self, alias: str, kind: str = "") -> tuple[str, ...]:
        """The groups to try, in order, when `alias` failed; `kind` names a special failure."""
        special = {"context_window": self.context_window_fallbacks, "content_policy": self.content_policy_fallbacks}
        if kind in special and alias in special[kind]:
            return special[kind][alias]
        return self.fallbacks.get(alias, self.default_fallbacks)


def read(router_settings: dict[str, Any], litellm_settings: dict[str, Any]) -> Policy:
    """The policy a config's two sections describe; values of the wrong type are ignored."""
    merged = {**litellm_settings, **router_settings}
    timeout = _number(merged.get("timeout"))
    if timeout is None:
        timeout = _number(litellm_settings.get("request_timeout"))
    strategy = merged.get("routing_strategy")
    return Policy(
        strategy=strategy if strategy in STRATEGIES else "simple-shuffle",
        num_retries=max(0, int(_number(merged.get("num_retries"), settings.TOLLGATE_NUM_RETRIES) or 0)),
        retry_after=max(0.0, _number(merged.get("retry_after")) or 0.0),
        timeout=timeout,
        stream_timeout=_number(merged.get("stream_timeout")),
        allowed_fails=max(0, int(_number(merged.get("allowed_fails"), 3) or 0)),
        cooldown_time=max(0.0, _number(merged.get("cooldown_time"), 5.0) or 0.0),
        cooldowns=not merged.get("disable_cooldowns", False),
        fallbacks=_fallback_map(merged.get("fallbacks")),
        context_window_fallbacks=_fallback_map(merged.get("context_window_fallbacks")),
        content_policy_fallbacks=_fallback_map(merged.get("content_policy_fallbacks")),
        default_fallbacks=_names(merged.get("default_fallbacks")),
    )


def request_fallbacks(value: Any) -> tuple[str, ...]:
    """A request body's own `fallbacks`: a list of model names (LiteLLM also takes dicts with `model`)."""
    if not isinstance(value, list):
        return ()
    names = [item.get("model") if isinstance(item, dict) else item for item in value]
    return tuple(name for name in names if isinstance(name, str) and name)


def _fallback_map(value: Any) -> dict[str, tuple[str, ...]]:
    """LiteLLM writes fallbacks as a list of one-key mappings: `[{"gpt-4": ["gpt-3.5"]}, …]`."""
    entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    mapping: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        if isinstance(entry, dict):
            for alias, targets in entry.items():
                if isinstance(alias, str):
                    mapping[alias] = _names(targets)
    return mapping


def _names(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(item for item in items if isinstance(item, str) and item)


def _number(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return default

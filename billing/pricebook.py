"""What a call costs: a deployment's price, a finished call's cost, the most a call can cost.

A deployment's own `input_cost_per_token` / `output_cost_per_token` win; else the list price of
its model, found by price list (from the `provider/` prefix) and model id; else the list price of
`model_info.base_model`. List prices come from FINDERS, first hit wins: the price book admins edit
(billing/pricetable.py, the ModelPrice rows in effect now), then the shipped table
(billing/prices.py) for ids it does not name.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from billing import prices, pricetable

if TYPE_CHECKING:  # billing never imports proxy at run time: proxy calls billing
    from proxy.models import Deployment
    from proxy.router import ModelGroup

ZERO = Decimal(0)

# An answer's bound when neither the body, model_info nor the price list gives one.
DEFAULT_MAX_OUTPUT = 8192

# The `provider/` prefix of a deployment's model → the price list it bills by.
PRICE_LISTS = {
    "mistral": "mistral",
    "codestral": "mistral",
    "text-completion-codestral": "mistral",
    "bedrock": "bedrock",
    "openai": "openai",
    "text-completion-openai": "openai",
    "anthropic": "anthropic",
    # Azure OpenAI bills OpenAI's list prices (global deployments): a deployment named after the
    # model (azure/gpt-4o), or naming it in model_info.base_model, is priced from OpenAI's list.
    "azure": "openai",
    "gemini": "gemini",
    "vertex_ai": "vertex_ai",
}

Finder = Callable[[str, str], prices.Listed | None]
#: Where list prices come from, in order, each asked (price list, exact model id).
FINDERS: list[Finder] = [pricetable.find, prices.find]

# A suffix naming one version of a model family: -latest, Mistral's -2503, OpenAI's -0125 and
# -2024-08-06, Anthropic's -20241022. Without an exact price, a version costs what its family does.
VERSION = re.compile(r"-(latest|\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")
BEDROCK_ROUTE = re.compile(r"^(converse|invoke)/")  # bedrock/converse/<model id>
AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+/")  # bedrock/us-east-1/<model id>
CROSS_REGION = re.compile(r"^(us|eu|apac|jp|au|ca|us-gov|global)\.")  # inference profiles: us.mistral...


@dataclass(frozen=True)
class Price:
    """USD per input token and per output token, and where they came from.

    `source` is "deployment", "mock", "list:<price list>/<model id>", "base_model:<...>", or
    "deployment+<...>" when the deployment set one price and the list gave the other. A list price
    from the database ends in "@db#<ModelPrice id>": "list:mistral/mistral-small-latest@db#42".
    """

    input: Decimal
    output: Decimal
    source: str

    def charge(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """What `prompt_tokens` in and `completion_tokens` out cost at this price."""
        return self.input * prompt_tokens + self.output * completion_tokens


class Hit(NamedTuple):
    source: str
    listed: prices.Listed


def price(deployment: "Deployment") -> Price | None:
    """Return the price of one token in and one token out of `deployment`; None when unpriced.

    Either of the deployment's own prices may be set alone: the other then comes from the list,
    else is 0. A mock deployment without prices of its own is free.
    """
    own_input = _decimal(deployment.input_cost_per_token)
    own_output = _decimal(deployment.output_cost_per_token)
    if own_input is not None and own_output is not None:
        return Price(own_input, own_output, "deployment")
    if own_input is None and own_output is None:
        if deployment.mock_response:
            return Price(ZERO, ZERO, "mock")
        hit = list_price(deployment)
        return None if hit is None else Price(hit.listed.input, hit.listed.output, hit.source)
    hit = list_price(deployment)
    listed = hit.listed if hit else prices.Listed(ZERO, ZERO)
    return Price(
        own_input if own_input is not None else listed.input,
        own_output if own_output is not None else listed.output,
        f"deployment+{hit.source}" if hit else "deployment",
    )


def cost(deployment: "Deployment", prompt_tokens: int, completion_tokens: int) -> tuple[Decimal, Price | None]:
    """Return what a finished call cost and the price used; 0 and None when the deployment is unpriced."""
    used = price(deployment)
    if used is None:
        return ZERO, None
    return used.charge(prompt_tokens, completion_tokens), used


def max_cost(group: "ModelGroup", body: dict[str, Any], *, prompt_bytes: int) -> Decimal | None:
    """Return the most one call to `group` can cost: what admission reserves against budgets.

    Any deployment of the group may take the call, so the bound is the dearest one's:
    `prompt_bytes * input price + max output tokens * output price` (no output part for an
    embeddings body). A byte count bounds the prompt's token count from above: the tokenizers in
    use (byte-level BPE such as tiktoken and Mistral's Tekken, SentencePiece with byte fallback)
    never make a token of less than one byte of text. Count the bytes of the request body, not of
    the message text alone: its JSON punctuation then also covers the tokens a chat template adds.
    Images are the exception: an image part costs tokens by its pixels, not by its bytes.

    None when any deployment of the group is unpriced: the caller decides whether to admit.
    """
    bounds = []
    for route in group.routes:
        used = price(route.deployment)
        if used is None:
            return None
        bounds.append(prompt_bytes * used.input + max_output(route.deployment, body) * used.output)
    return max(bounds, default=ZERO)


def max_tokens(group: "ModelGroup", body: dict[str, Any], *, prompt_bytes: int) -> int:
    """Return the most tokens one call to `group` can use (prompt and answer), for tpm limits."""
    return prompt_bytes + max((max_output(r.deployment, body) for r in group.routes), default=0)


def max_output(deployment: "Deployment", body: dict[str, Any]) -> int:
    """Return the most tokens `deployment` can answer `body` with, counting every choice asked for.

    The body's `max_tokens` / `max_completion_tokens` (the larger, when both), else the
    deployment's `model_info.max_output_tokens` / `max_tokens`, else the model's limit in the price
    list, else DEFAULT_MAX_OUTPUT. An embeddings body (`input`, no `messages` or `prompt`) has none;
    a mock deployment answers with its fixed text whatever was asked, never more tokens than bytes.
    """
    if "input" in body and "messages" not in body and "prompt" not in body:
        return 0
    if deployment.mock_response:
        return max(1, len(deployment.mock_response.encode()))
    asked = [n for n in map(_positive_int, (body.get("max_tokens"), body.get("max_completion_tokens"))) if n]
    limit = max(asked) if asked else output_limit(deployment)
    choices = max(_positive_int(body.get("n")) or 1, _positive_int(body.get("best_of")) or 1)
    return limit * choices


def output_limit(deployment: "Deployment") -> int:
    """Return the most tokens one answer of `deployment` may hold when the caller sets no limit."""
    info = deployment.model_info if isinstance(deployment.model_info, dict) else {}
    declared = _positive_int(info.get("max_output_tokens")) or _positive_int(info.get("max_tokens"))
    if declared:
        return declared
    hit = list_price(deployment)
    if hit is not None and hit.listed.max_output:
        return hit.listed.max_output
    return DEFAULT_MAX_OUTPUT


def list_price(deployment: "Deployment") -> Hit | None:
    """Return the list price of the deployment's model, else of its `model_info.base_model`."""
    hit = lookup(deployment.provider, deployment.provider_model)
    if hit is not None:
        return hit
    info = deployment.model_info if isinstance(deployment.model_info, dict) else {}
    base_model = info.get("base_model")
    if not isinstance(base_model, str) or not base_model:
        return None
    if "/" in base_model:
        provider, model = base_model.split("/", 1)
        hit = lookup(provider, model)
    else:  # a bare id ("gpt-4o", as LiteLLM writes OpenAI's and Anthropic's): whichever list knows it
        lists = dict.fromkeys(PRICE_LISTS.values())
        hit = next(filter(None, (_find(price_list, base_model) for price_list in lists)), None)
    return None if hit is None else Hit(f"base_model:{hit.source.removeprefix('list:')}", hit.listed)


def lookup(provider: str, model: str) -> Hit | None:
    """Return the list price of `model` as served by `provider` (a `provider/` prefix), or None."""
    price_list = PRICE_LISTS.get(provider)
    return None if price_list is None else _find(price_list, model)


def _find(price_list: str, model: str) -> Hit | None:
    for name in _names(price_list, model):
        for finder in FINDERS:
            listed = finder(price_list, name)
            if listed is not None:
                origin = f"@{listed.origin}" if listed.origin else ""
                return Hit(f"list:{price_list}/{name}{origin}", listed)
    return None


def _names(price_list: str, model: str) -> list[str]:
    """Return the ids to try for `model`, best first: as given, unwrapped, then its family."""
    names = [model]
    if price_list == "bedrock":
        unwrapped = AWS_REGION.sub("", BEDROCK_ROUTE.sub("", model))
        names += [unwrapped, CROSS_REGION.sub("", unwrapped)]
    if "@" in model:  # Vertex names a version after "@": mistral-large@2411 is listed as mistral-large-2411
        names.append(names[-1].replace("@", "-", 1))
    family = VERSION.sub("", names[-1])
    names += [f"{family}-latest", family]
    return list(dict.fromkeys(names))


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None

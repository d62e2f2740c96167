"""The price book: which price a deployment bills by, what a call cost, what to reserve."""

from decimal import Decimal

import pytest

from billing import pricebook, prices
from billing.pricebook import Price
from proxy.models import Deployment
from proxy.router import ModelGroup, Route

CHAT = {"model": "alias", "messages": [{"role": "user", "content": "Hi"}]}
EMBED = {"model": "alias", "input": ["a text"]}


def deployment(model: str = "mistral/mistral-small-latest", **fields) -> Deployment:
    return Deployment(model_name="alias", litellm_model=model, **fields)


def group(*deployments: Deployment) -> ModelGroup:
    return ModelGroup("alias", tuple(Route(d, None) for d in deployments))  # type: ignore[arg-type]


def per_million(usd: str) -> Decimal:
    return Decimal(usd) / 1_000_000


def test_deployment_prices_win_over_the_list():
    d = deployment(input_cost_per_token=Decimal("0.000001"), output_cost_per_token=Decimal("0.000002"))

    assert pricebook.price(d) == Price(Decimal("0.000001"), Decimal("0.000002"), "deployment")


def test_one_deployment_price_takes_the_other_from_the_list():
    d = deployment("mistral/mistral-large-2411", output_cost_per_token=Decimal("0.00001"))

    assert pricebook.price(d) == Price(
        per_million("2"), Decimal("0.00001"), "deployment+list:mistral/mistral-large-2411"
    )


def test_one_deployment_price_on_an_unlisted_model_makes_the_other_zero():
    d = deployment("hosted_vllm/my-finetune", input_cost_per_token="0.0000005")

    assert pricebook.price(d) == Price(Decimal("0.0000005"), Decimal(0), "deployment")


@pytest.mark.parametrize(
    ("model", "source"),
    [
        ("mistral/mistral-small-2503", "list:mistral/mistral-small-2503"),
        ("codestral/codestral-latest", "list:mistral/codestral-latest"),
        ("text-completion-codestral/codestral-2501", "list:mistral/codestral-2501"),
        ("openai/gpt-4o-mini", "list:openai/gpt-4o-mini"),
        ("anthropic/claude-3-5-haiku-20241022", "list:anthropic/claude-3-5-haiku"),
        ("bedrock/mistral.mistral-7b-instruct-v0:2", "list:bedrock/mistral.mistral-7b-instruct-v0:2"),
        ("bedrock/converse/mistral.mistral-large-2407-v1:0", "list:bedrock/mistral.mistral-large-2407-v1:0"),
        ("bedrock/invoke/mistral.mixtral-8x7b-instruct-v0:1", "list:bedrock/mistral.mixtral-8x7b-instruct-v0:1"),
        ("bedrock/us-west-2/mistral.mistral-small-2402-v1:0", "list:bedrock/mistral.mistral-small-2402-v1:0"),
        ("bedrock/converse/us.mistral.pixtral-large-2502-v1:0", "list:bedrock/mistral.pixtral-large-2502-v1:0"),
    ],
)
def test_provider_prefixes_resolve_to_the_list(model, source):
    assert pricebook.price(deployment(model)).source == source


def test_mistral_prices_come_from_the_table():
    assert pricebook.price(deployment("mistral/mistral-large-2411")) == Price(
        per_million("2"), per_million("6"), "list:mistral/mistral-large-2411"
    )
    assert pricebook.price(deployment("mistral/open-mistral-nemo")).output == Decimal("0.00000015")


def test_dated_version_without_its_own_price_costs_what_its_family_does():
    unknown = pricebook.price(deployment("mistral/mistral-small-2612"))
    latest = pricebook.price(deployment("mistral/mistral-small-latest"))

    assert unknown.source == "list:mistral/mistral-small-latest"
    assert (unknown.input, unknown.output) == (latest.input, latest.output)


@pytest.mark.parametrize(
    ("model", "source"),
    [
        ("mistral/mistral-large", "list:mistral/mistral-large-latest"),
        ("openai/gpt-4o-mini-2024-07-18", "list:openai/gpt-4o-mini"),
        ("openai/gpt-4.1-2025-04-14", "list:openai/gpt-4.1"),
        ("openai/gpt-3.5-turbo-0125", "list:openai/gpt-3.5-turbo"),
        ("anthropic/claude-3-7-sonnet-latest", "list:anthropic/claude-3-7-sonnet"),
        ("anthropic/claude-sonnet-4-20250514", "list:anthropic/claude-sonnet-4"),
    ],
)
def test_versions_and_latest_aliases_resolve_to_their_family(model, source):
    assert pricebook.price(deployment(model)).source == source


def test_an_exact_dated_price_wins_over_the_family():
    assert pricebook.price(deployment("openai/gpt-4o-2024-05-13")).input == per_million("5")
    assert pricebook.price(deployment("openai/gpt-4o")).input == per_million("2.5")


def test_unlisted_model_falls_back_to_base_model():
    d = deployment("hosted_vllm/mistralai/Mistral-Small-3.1", model_info={"base_model": "mistral/mistral-small-2503"})

    assert pricebook.price(d) == Price(per_million("0.1"), per_million("0.3"), "base_model:mistral/mistral-small-2503")


def test_bare_base_model_is_found_in_whichever_list_knows_it():
    d = deployment("azure/my-gpt", model_info={"base_model": "gpt-4o-mini-2024-07-18"})

    assert pricebook.price(d).source == "base_model:openai/gpt-4o-mini"


def test_mock_deployment_costs_nothing():
    d = Deployment(model_name="alias", litellm_model="fake-model", mock_response="Hello")

    assert pricebook.price(d) == Price(Decimal(0), Decimal(0), "mock")
    assert pricebook.cost(d, 1000, 1000) == (Decimal(0), pricebook.price(d))


def test_mock_deployment_with_its_own_prices_costs_them():
    d = deployment("mistral/mistral-small-latest", mock_response="Hello", input_cost_per_token=Decimal("0.001"))

    assert pricebook.price(d).input == Decimal("0.001")


@pytest.mark.parametrize("model_info", [{}, {"base_model": "mistral/no-such-model"}, {"base_model": "no-such-model"}])
def test_unknown_model_is_unpriced(model_info):
    d = deployment("mistral/no-such-model", model_info=model_info)

    assert pricebook.price(d) is None
    assert pricebook.cost(d, 100, 100) == (Decimal(0), None)


def test_a_listed_model_behind_an_unlisted_provider_is_unpriced():
    assert pricebook.price(deployment("hosted_vllm/mistral-small-latest")) is None


def test_cost_is_exact_decimal_arithmetic():
    d = deployment("mistral/mistral-large-2411")

    total, used = pricebook.cost(d, 1234, 567)

    assert total == Decimal("0.005870")  # 1234 * $2/M + 567 * $6/M
    assert used.source == "list:mistral/mistral-large-2411"


def test_cost_of_tiny_prices_does_not_round():
    d = deployment(input_cost_per_token=Decimal("0.000000012345"), output_cost_per_token=Decimal("0.000000000001"))

    assert pricebook.cost(d, 3, 7)[0] == Decimal("0.000000037042")


def test_max_cost_reserves_for_the_dearest_deployment():
    cheap = deployment("mistral/open-mistral-7b")
    dear = deployment("mistral/mistral-large-2411")

    reserved = pricebook.max_cost(group(cheap, dear), {**CHAT, "max_tokens": 100}, prompt_bytes=1000)

    assert reserved == 1000 * per_million("2") + 100 * per_million("6")


def test_max_cost_bound_takes_each_deployments_own_output_limit():
    cheap_but_long = deployment("mistral/magistral-medium-2509")  # $5/M out, 131072 tokens
    dear_but_short = deployment("mistral/mistral-large-2402")  # $12/M out, 8191 tokens

    reserved = pricebook.max_cost(group(dear_but_short, cheap_but_long), CHAT, prompt_bytes=0)

    assert reserved == 131_072 * per_million("5")


def test_max_tokens_comes_from_the_body():
    g = group(deployment("mistral/mistral-small-2503"))

    assert pricebook.max_tokens(g, {**CHAT, "max_tokens": 50}, prompt_bytes=200) == 250
    assert pricebook.max_tokens(g, {**CHAT, "max_completion_tokens": 70}, prompt_bytes=200) == 270
    assert pricebook.max_tokens(g, {**CHAT, "max_tokens": None}, prompt_bytes=0) == 131_072


def test_max_tokens_else_from_model_info():
    g = group(deployment("mistral/mistral-small-2503", model_info={"max_output_tokens": 4000}))
    legacy = group(deployment("mistral/mistral-small-2503", model_info={"max_tokens": 3000}))

    assert pricebook.max_tokens(g, CHAT, prompt_bytes=10) == 4010
    assert pricebook.max_tokens(legacy, CHAT, prompt_bytes=10) == 3010


def test_max_tokens_else_from_the_table():
    g = group(deployment("openai/gpt-4o-mini"))

    assert pricebook.max_tokens(g, CHAT, prompt_bytes=10) == 10 + prices.OPENAI["gpt-4o-mini"].max_output


def test_max_tokens_else_the_default():
    g = group(deployment("hosted_vllm/my-model", input_cost_per_token="0", output_cost_per_token="0"))

    assert pricebook.max_tokens(g, CHAT, prompt_bytes=10) == 10 + pricebook.DEFAULT_MAX_OUTPUT


def test_every_choice_asked_for_counts():
    g = group(deployment("mistral/mistral-small-2503"))

    assert pricebook.max_tokens(g, {**CHAT, "max_tokens": 100, "n": 3}, prompt_bytes=0) == 300


def test_embeddings_have_no_output_part():
    g = group(deployment("mistral/mistral-embed"))

    assert pricebook.max_cost(g, EMBED, prompt_bytes=1000) == 1000 * per_million("0.1")
    assert pricebook.max_tokens(g, EMBED, prompt_bytes=1000) == 1000


def test_a_group_with_an_unpriced_deployment_has_no_max_cost():
    g = group(deployment("mistral/mistral-small-2503"), deployment("hosted_vllm/mystery"))

    assert pricebook.max_cost(g, CHAT, prompt_bytes=100) is None
    assert pricebook.max_tokens(g, {**CHAT, "max_tokens": 10}, prompt_bytes=100) == 110


def test_mock_group_reserves_nothing():
    g = group(Deployment(model_name="alias", litellm_model="fake", mock_response="Hi"))

    assert pricebook.max_cost(g, CHAT, prompt_bytes=100) == 0


def test_mock_answer_is_bounded_by_its_own_text():
    g = group(Deployment(model_name="alias", litellm_model="fake", mock_response="Héllo"))

    assert pricebook.max_tokens(g, CHAT, prompt_bytes=100) == 106
    assert pricebook.max_tokens(g, {**CHAT, "max_tokens": 1}, prompt_bytes=100) == 106


def test_shipped_prices_are_decimals_per_token():
    for price_list in prices.LISTS.values():
        for listed in price_list.values():
            assert isinstance(listed.input, Decimal) and isinstance(listed.output, Decimal)
            assert 0 <= listed.input < Decimal("0.0001") and 0 <= listed.output < Decimal("0.0001")

"""The shipped price list: public per-token list prices in USD, by price list and model id.

Prices are written per million tokens, as providers publish them, and kept per token.
`max_output` is the most tokens one answer may hold; where a provider publishes no separate
output cap (Mistral), it is the context window, which bounds the answer from above.

Checked 2026-11-25 against:
- Mistral: LiteLLM's model_prices_and_context_window.json (BerriAI/litellm, and litellm 1.108.7 as
  installed in benchmarks/.venv-litellm), cross-checked with Mistral's pricing page as mirrored by
  lobehub/lobe-chat src/config/aiModels/mistral.ts and current third-party listings (margindash,
  Vercel AI Gateway, whichllm). Where LiteLLM still carries a launch price that Mistral has since
  cut (Sept. 2024: Large 2, Small 24.09, Codestral 24.05, NeMo), Mistral's current price is used.
  `-latest` names carry the price of the model they serve today (Large 3, Medium 3.5, Small 4,
  Codestral 25.08, Ministral 3); dated names keep the price of that version.
- Bedrock (us-east-1 / us-west-2 on-demand), OpenAI and Anthropic: the same LiteLLM file.
- Added 2026-11-25 (Devstral, Saba, mistral-tiny; GPT-5 family, o1/o3/o4-mini, GPT-4 Turbo, GPT-4;
  Claude Sonnet 4.6, Opus 4.6, 3 Sonnet): LiteLLM's file and the providers' pricing pages as
  mirrored in public price tables.
The database price book (billing/pricetable.py) wins over this table; migration 0002 loads it there.
"""

from dataclasses import dataclass
from decimal import Decimal

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Listed:
    """One model's list price: USD per input and per output token, and its answer size limit.

    `origin` names where an edited price is kept ("db#42": that ModelPrice row, see
    billing/pricetable.py), so the usage ledger can tell which row a call was billed by; empty
    for this shipped table.
    """

    input: Decimal
    output: Decimal
    max_output: int | None = None
    origin: str = ""


def per_million(input_usd: str, output_usd: str, max_output: int | None = None) -> Listed:
    return Listed(Decimal(input_usd) / MILLION, Decimal(output_usd) / MILLION, max_output)


K32, K64, K128, K256 = 32_768, 65_536, 131_072, 262_144

LARGE_3 = per_million("0.5", "1.5", K256)
LARGE_2 = per_million("2", "6", K128)
MEDIUM_3_5 = per_million("1.5", "7.5", K256)
MEDIUM_3 = per_million("0.4", "2", K128)
SMALL_4 = per_million("0.15", "0.6", K256)
SMALL_3 = per_million("0.1", "0.3", K128)
NEMO = per_million("0.15", "0.15", K128)
CODESTRAL_25 = per_million("0.3", "0.9", K256)
MAMBA = per_million("0.25", "0.25", K256)
PIXTRAL_12B = per_million("0.15", "0.15", K128)
PIXTRAL_LARGE = per_million("2", "6", K128)
MINISTRAL_3_3B = per_million("0.1", "0.1", K128)
MINISTRAL_3_8B = per_million("0.15", "0.15", K256)
MAGISTRAL_SMALL = per_million("0.5", "1.5", 40_000)
MAGISTRAL_MEDIUM = per_million("2", "5", 40_000)
DEVSTRAL_2 = per_million("0.4", "2", K256)
DEVSTRAL_SMALL = per_million("0.1", "0.3", K256)
SABA = per_million("0.2", "0.6", K32)
MISTRAL_EMBED = per_million("0.1", "0")
CODESTRAL_EMBED = per_million("0.15", "0")

# La Plateforme (api.mistral.ai); the codestral.mistral.ai endpoint bills by the same list.
MISTRAL: dict[str, Listed] = {
    "mistral-large-latest": LARGE_3,
    "mistral-large-2512": LARGE_3,
    "mistral-large-2411": LARGE_2,
    "mistral-large-2407": LARGE_2,
    "mistral-large-2402": per_million("4", "12", 8191),
    "mistral-medium-latest": MEDIUM_3_5,
    "mistral-medium-2604": MEDIUM_3_5,
    "mistral-medium-2508": MEDIUM_3,
    "mistral-medium-2505": MEDIUM_3,
    "mistral-medium-2312": per_million("2.7", "8.1", 8191),
    "mistral-small-latest": SMALL_4,
    "mistral-small-2603": SMALL_4,
    "mistral-small-2506": SMALL_3,
    "mistral-small-2503": SMALL_3,
    "mistral-small-2501": per_million("0.1", "0.3", K32),
    "mistral-small-2409": per_million("0.2", "0.6", K32),
    "mistral-small-2402": per_million("1", "3", 8191),
    "open-mistral-nemo": NEMO,
    "open-mistral-nemo-2407": NEMO,
    "codestral-latest": CODESTRAL_25,
    "codestral-2508": CODESTRAL_25,
    "codestral-2501": CODESTRAL_25,
    "codestral-2405": per_million("0.2", "0.6", K32),
    "open-codestral-mamba": MAMBA,
    "codestral-mamba-latest": MAMBA,
    "codestral-mamba-2407": MAMBA,
    "open-mistral-7b": per_million("0.25", "0.25", K32),
    "mistral-tiny": per_million("0.25", "0.25", K32),  # the 7B's first API name
    "open-mixtral-8x7b": per_million("0.7", "0.7", K32),
    "open-mixtral-8x22b": per_million("2", "6", K64),
    "pixtral-12b-latest": PIXTRAL_12B,
    "pixtral-12b-2409": PIXTRAL_12B,
    "pixtral-large-latest": PIXTRAL_LARGE,
    "pixtral-large-2411": PIXTRAL_LARGE,
    "ministral-3b-latest": MINISTRAL_3_3B,
    "ministral-3b-2512": MINISTRAL_3_3B,
    "ministral-3b-2410": per_million("0.04", "0.04", K128),
    "ministral-8b-latest": MINISTRAL_3_8B,
    "ministral-8b-2512": MINISTRAL_3_8B,
    "ministral-8b-2410": per_million("0.1", "0.1", K128),
    # The Magistral names now serve the merged reasoning models (Small 4, Medium 3.5).
    "magistral-small-latest": SMALL_4,
    "magistral-small-2509": per_million("0.5", "1.5", K128),
    "magistral-small-2507": MAGISTRAL_SMALL,
    "magistral-small-2506": MAGISTRAL_SMALL,
    "magistral-medium-latest": MEDIUM_3_5,
    "magistral-medium-2509": per_million("2", "5", K128),
    "magistral-medium-2507": MAGISTRAL_MEDIUM,
    "magistral-medium-2506": MAGISTRAL_MEDIUM,
    "devstral-latest": DEVSTRAL_2,
    "devstral-2512": DEVSTRAL_2,
    "devstral-medium-latest": DEVSTRAL_2,
    "devstral-medium-2507": per_million("0.4", "2", K128),
    "devstral-small-latest": DEVSTRAL_SMALL,
    "labs-devstral-small-2512": DEVSTRAL_SMALL,
    "devstral-small-2507": per_million("0.1", "0.3", K128),
    "devstral-small-2505": per_million("0.1", "0.3", K128),
    "mistral-saba-latest": SABA,
    "mistral-saba-2502": SABA,
    "mistral-embed": MISTRAL_EMBED,
    "mistral-embed-2312": MISTRAL_EMBED,
    "codestral-embed": CODESTRAL_EMBED,
    "codestral-embed-2505": CODESTRAL_EMBED,
}

# Amazon Bedrock on-demand, us-east-1 / us-west-2 (other regions cost more: set prices per deployment).
BEDROCK: dict[str, Listed] = {
    "mistral.mistral-7b-instruct-v0:2": per_million("0.15", "0.2", 8192),
    "mistral.mixtral-8x7b-instruct-v0:1": per_million("0.45", "0.7", 4096),
    "mistral.mistral-large-2402-v1:0": per_million("4", "12", 8192),
    "mistral.mistral-large-2407-v1:0": per_million("2", "6", 8192),
    "mistral.mistral-small-2402-v1:0": per_million("1", "3", 8192),
    "mistral.pixtral-large-2502-v1:0": per_million("2", "6", 16_384),
}

GPT_4O = per_million("2.5", "10", 16_384)
GPT_5 = per_million("1.25", "10", 128_000)
O_MINI = per_million("1.1", "4.4", 100_000)
OPENAI: dict[str, Listed] = {
    "gpt-5": GPT_5,
    "gpt-5.1": GPT_5,
    "gpt-5.2": per_million("1.75", "14", 128_000),
    "gpt-5-mini": per_million("0.25", "2", 128_000),
    "gpt-5-nano": per_million("0.05", "0.4", 128_000),
    "gpt-4o": GPT_4O,
    "gpt-4o-2024-11-20": GPT_4O,
    "gpt-4o-2024-08-06": GPT_4O,
    "gpt-4o-2024-05-13": per_million("5", "15", 4096),
    "gpt-4o-mini": per_million("0.15", "0.6", 16_384),
    "gpt-4.1": per_million("2", "8", 32_768),
    "gpt-4.1-mini": per_million("0.4", "1.6", 32_768),
    "gpt-4.1-nano": per_million("0.1", "0.4", 32_768),
    "o1": per_million("15", "60", 100_000),
    "o1-mini": per_million("1.1", "4.4", 65_536),
    "o3": per_million("2", "8", 100_000),
    "o3-mini": O_MINI,
    "o4-mini": O_MINI,
    "gpt-4-turbo": per_million("10", "30", 4096),
    "gpt-4": per_million("30", "60", 4096),
    "gpt-3.5-turbo": per_million("0.5", "1.5", 4096),
    "gpt-3.5-turbo-1106": per_million("1", "2", 4096),
    "gpt-35-turbo": per_million("0.5", "1.5", 4096),  # Azure's name for gpt-3.5-turbo (no dot in deployment names)
    "text-embedding-3-small": per_million("0.02", "0"),
    "text-embedding-3-large": per_million("0.13", "0"),
    "text-embedding-ada-002": per_million("0.1", "0"),
}

SONNET = per_million("3", "15", 64_000)
OPUS_4 = per_million("15", "75", 32_000)
ANTHROPIC: dict[str, Listed] = {
    "claude-3-5-sonnet": per_million("3", "15", 8192),
    "claude-3-5-sonnet-20240620": per_million("3", "15", 4096),
    "claude-3-7-sonnet": SONNET,
    "claude-sonnet-4": SONNET,
    "claude-sonnet-4-0": SONNET,
    "claude-sonnet-4-5": SONNET,
    "claude-sonnet-4-6": SONNET,
    "claude-opus-4": OPUS_4,
    "claude-opus-4-0": OPUS_4,
    "claude-opus-4-1": OPUS_4,
    "claude-opus-4-5": per_million("5", "25", 64_000),
    "claude-opus-4-6": per_million("5", "25", 128_000),
    "claude-haiku-4-5": per_million("1", "5", 64_000),
    "claude-3-5-haiku": per_million("0.8", "4", 8192),
    "claude-3-haiku": per_million("0.25", "1.25", 4096),
    "claude-3-opus": per_million("15", "75", 4096),
    "claude-3-sonnet": per_million("3", "15", 4096),
}

# Google: AI Studio (gemini/) and Vertex AI (vertex_ai/) standard paid tier, prompts up to 200k
# tokens (128k for 1.5); longer prompts cost more: set prices per deployment. Thinking tokens bill
# as output. Checked 2026-11-25 against Google's pricing pages as mirrored in LiteLLM's file.
GEMINI_2_5_PRO = per_million("1.25", "10", 65_536)
GEMINI_2_5_FLASH = per_million("0.3", "2.5", 65_536)
GEMINI_2_5_FLASH_LITE = per_million("0.1", "0.4", 65_536)
GEMINI_2_0_FLASH_LITE = per_million("0.075", "0.3", 8192)
GEMINI_1_5_PRO = per_million("1.25", "5", 8192)
GEMINI_1_5_FLASH = per_million("0.075", "0.3", 8192)
GEMINI_SHARED: dict[str, Listed] = {
    "gemini-3-pro-preview": per_million("2", "12", 65_536),
    "gemini-2.5-pro": GEMINI_2_5_PRO,
    "gemini-2.5-flash": GEMINI_2_5_FLASH,
    "gemini-2.5-flash-lite": GEMINI_2_5_FLASH_LITE,
    "gemini-2.0-flash-lite": GEMINI_2_0_FLASH_LITE,
    "gemini-2.0-flash-lite-001": GEMINI_2_0_FLASH_LITE,
    "gemini-1.5-pro": GEMINI_1_5_PRO,
    "gemini-1.5-pro-002": GEMINI_1_5_PRO,
    "gemini-1.5-pro-001": GEMINI_1_5_PRO,
    "gemini-1.5-flash": GEMINI_1_5_FLASH,
    "gemini-1.5-flash-002": GEMINI_1_5_FLASH,
    "gemini-1.5-flash-001": GEMINI_1_5_FLASH,
    "gemini-embedding-001": per_million("0.15", "0"),
}
GEMINI: dict[str, Listed] = {
    **GEMINI_SHARED,
    "gemini-2.0-flash": per_million("0.1", "0.4", 8192),
    "gemini-2.0-flash-001": per_million("0.1", "0.4", 8192),
    "gemini-1.5-flash-8b": per_million("0.0375", "0.15", 8192),
    "text-embedding-004": per_million("0", "0"),  # free on AI Studio
}
# Vertex AI: Gemini 2.0 Flash costs more than on AI Studio; Mistral's models are priced by Vertex
# like La Plateforme's. Vertex names versions after "@" (mistral-large@2411): the price book reads
# that as mistral-large-2411.
VERTEX_AI: dict[str, Listed] = {
    **GEMINI_SHARED,
    "gemini-2.0-flash": per_million("0.15", "0.6", 8192),
    "gemini-2.0-flash-001": per_million("0.15", "0.6", 8192),
    "text-embedding-005": per_million("0.1", "0"),
    "text-embedding-004": per_million("0.1", "0"),
    "text-multilingual-embedding-002": per_million("0.1", "0"),
    "mistral-large-2411": LARGE_2,
    "mistral-large-2407": LARGE_2,
    "mistral-large": LARGE_2,  # Vertex's unversioned name still serves 24.11
    "mistral-small-2503": SMALL_3,
    "mistral-small": SMALL_3,
    "mistral-medium-3": MEDIUM_3,
    "mistral-nemo-2407": NEMO,
    "mistral-nemo": NEMO,
    "mistral-ocr-2505": per_million("1", "3"),
    "codestral-2": CODESTRAL_25,
    "codestral-2508": CODESTRAL_25,
    "codestral-2501": CODESTRAL_25,
    "codestral": CODESTRAL_25,
    "codestral-2405": per_million("0.2", "0.6", K32),
}

LISTS: dict[str, dict[str, Listed]] = {
    "mistral": MISTRAL,
    "bedrock": BEDROCK,
    "openai": OPENAI,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "vertex_ai": VERTEX_AI,
}


def find(price_list: str, model: str) -> Listed | None:
    """Return the shipped price of `model` (an exact id) in `price_list`, or None."""
    return LISTS.get(price_list, {}).get(model)

"""Estimate token counts when a provider reports no usage: a stream the caller cut off, a provider without usage.

Upstream `usage` is the billing truth; these numbers are estimates, and the usage row says so
(`tokens_estimated`). They come from Mistral's own tokenizers, shipped inside the mistral-common
wheel, so nothing is ever downloaded (tiktoken would fetch its encodings at run time).

Which tokenizer: RULES map a model id's family to the file its model really uses (sources: Mistral's
tokenization guide, mistral-common's MODEL_NAME_TO_TOKENIZER_CLS); every other model, Mistral's
current families (Nemo, Ministral, Small ≥ 24.09, Medium 3, Large 3, Pixtral 12B, Codestral 25.xx,
Magistral, Devstral, …) and non-Mistral ones alike, gets Tekken. For OpenAI, Anthropic and unknown
models no offline tokenizer exists: Tekken, a 131k byte-level BPE close to OpenAI's o200k, stands in.
Text encodes alike within each kind: v1, v2, v3 and v7 share one 32k SentencePiece vocabulary
(v2+ only add control tokens), and the two shipped Tekken files share one (tekken_240911 only adds an
image config), so four small files and one Tekken file cover every model. Tekken files of later models
are not shipped; 240718's 131k vocabulary is their stand-in (their markers differ, not their text).

Cost, measured on this machine (CPU, one process, after gc):
- Load: Tekken 1.1-1.7 s (2.5-3.5 s with both cores busy) and +104 MB RSS (peak +109 MB while its
  JSON is parsed); a SentencePiece file 0.02-0.04 s and +8 MB. Hence lazy, once per process, cached.
  Under gevent the load runs in the hub's thread pool: the worker's other greenlets kept running, the
  longest stall 175 ms (the JSON parse holds the GIL); on the hub they would freeze for the whole load.
- Encode 10 kB of mixed text: Tekken 1.7-2.7 ms, SentencePiece 1.6-1.9 ms; linear, ~0.25 µs a
  character, also for long runs without spaces (base64).

Never fails: any error (a tokenizer that cannot load or raises, an odd body) falls back to a byte
count, len(UTF-8 bytes) / 4 rounded up, logged at debug level.
"""

import importlib.util
import json
import logging
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Encode = Callable[[str], list[int]]

#: Tokenizer name → its file in mistral_common/data.
FILES: dict[str, str] = {
    "v1": "tokenizer.model.v1",
    "v2": "mistral_instruct_tokenizer_240216.model.v2",
    "v3": "mistral_instruct_tokenizer_240323.model.v3",
    "v7": "mistral_instruct_tokenizer_241114.model.v7",  # = v7m1 (Pixtral Large) but for its image config
    "tekken": "tekken_240718.json",  # = tekken_240911 (Pixtral 12B) but for its image config
}
DEFAULT = "tekken"

# Model family → tokenizer, first match wins, searched in the lower-cased id without its path
# (`converse/`, a region, `mistralai/`) or Bedrock prefix (`us.mistral.`). Only families older than
# Tekken need a rule; Large 3 (2512, today's -latest), Small ≥ 24.09 and the rest fall through to it.
RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), name)
    for p, name in [
        # Mistral 7B v0.1/v0.2 (Bedrock's mistral-7b-instruct-v0:2, Hugging Face ids), Mixtral 8x7B,
        # mistral-embed: the first SentencePiece, where [INST] is plain text.
        (r"mistral-7b(-instruct)?-v0[.:][12]\b|mixtral-8x7b|mistral-embed|mistral-medium-2312", "v1"),
        (r"mistral-(tiny|small)-2312|mistral-(small|large)-2402|mistral-tiny$", "v2"),
        # open-mistral-7b is 7B v0.3 on Mistral's API; codestral-22b is the 2405 Codestral.
        (r"mistral-tiny|mistral-7b|mixtral-8x22b|mistral-large-2407|codestral-(2405|22b|mamba)|mathstral", "v3"),
        (r"mistral-large-2411|pixtral-large", "v7"),  # Pixtral Large 24.11 = Bedrock's pixtral-large-2502
    ]
]
# Bedrock's vendor prefix, behind a cross-region inference profile's (us., eu., apac., …) if any.
BEDROCK_VENDOR = re.compile(r"^([a-z-]+\.)?mistral\.")
MISTRAL_PROVIDERS = {"mistral", "codestral", "text-completion-codestral"}
MISTRAL_NAMES = re.compile(r"mistral|mixtral|codestral|ministral|pixtral|magistral|devstral|mathstral|voxtral|nemo")

#: A flat estimate for one image (or other media) part: its pixels are not at hand. A ~1-megapixel
#: picture costs 1,398 on Anthropic (w·h/750 at 1024²), 1,406 on Mistral Small 3.1 / Medium 3
#: (28-px tokens: 37² + 37 row breaks), 765 on OpenAI (high detail) and 4,160 on Pixtral 12B.
IMAGE_TOKENS = 1_400

# Past this many characters a text is counted by evenly spaced samples, scaled up: an exact count of
# 1 M characters is ~250 ms of CPU, and on a gevent worker that stalls every other request.
EXACT_CHARS = 1_000_000
SAMPLES = 8


@dataclass(frozen=True)
class Template:
    """Tokens a chat template or prompt format adds around the text it wraps."""

    start: int  # once per request
    turn: int  # around each user, system, developer or tool message
    answer: int  # after each assistant message
    fim: int  # around a fill-in-the-middle suffix


# Measured with mistral-common's encode_chat_completion / encode_fim on each tokenizer.
# v2+ and Tekken: <s>, then [INST]…[/INST] (or [TOOL_RESULTS]…[/TOOL_RESULTS]) around each turn and
# </s> after each answer, all control tokens; FIM is <s>[SUFFIX]suffix[PREFIX]prompt.
MISTRAL = Template(start=1, turn=2, answer=1, fim=2)
# v1 writes " [INST] " and " [/INST]" as text: 3 + 4 tokens a turn.
MISTRAL_V1 = Template(start=1, turn=7, answer=1, fim=2)
# OpenAI's published count for its chat format: 3 a message (<|start|>role…<|end|>), 3 to prime the reply.
FOREIGN = Template(start=3, turn=3, answer=3, fim=0)


@dataclass(frozen=True)
class Choice:
    tokenizer: str  # a key of FILES
    template: Template


#: How many times each tokenizer was read from disk in this process (once, unless it failed).
LOADS: Counter[str] = Counter()
_loaded: dict[str, Encode | None] = {}  # None: it failed to load; count bytes instead
_locks: dict[str, Any] = {}


def estimate_prompt(provider: str, model: str, body: dict[str, Any]) -> int:
    """Return the estimated prompt tokens of a chat, completions, FIM or embeddings request body."""
    try:
        choice = resolve(provider, model)
        texts, counted = _prompt_parts(body, choice.template)
        return _count_all(choice.tokenizer, texts, provider=provider, model=model) + counted
    except Exception:
        logger.debug("Estimating prompt tokens from bytes for %s/%s", provider, model, exc_info=True)
        return _byte_estimate(json.dumps(body, ensure_ascii=False, default=str))


def estimate_text(provider: str, model: str, text: str) -> int:
    """Return the estimated tokens of generated text."""
    try:
        return _count_all(resolve(provider, model).tokenizer, [text], provider=provider, model=model)
    except Exception:
        logger.debug("Estimating completion tokens from bytes for %s/%s", provider, model, exc_info=True)
        return _byte_estimate(str(text))


def resolve(provider: str, model: str) -> Choice:
    """Return the tokenizer and chat template of `model` as served by `provider` (a `provider/` prefix)."""
    family = _family(model)
    name = next((name for pattern, name in RULES if pattern.search(family)), DEFAULT)
    if name == "v1":
        return Choice(name, MISTRAL_V1)
    if provider in MISTRAL_PROVIDERS or MISTRAL_NAMES.search(family):
        return Choice(name, MISTRAL)
    return Choice(name, FOREIGN)


def _family(model: str) -> str:
    """Return the id to match RULES against: `converse/us.mistral.x-v1:0` → `x-v1:0`.

    Like pricebook's names, but self-contained: this module must import without Django's app registry.
    """
    return BEDROCK_VENDOR.sub("", model.strip().lower().rsplit("/", 1)[-1])


def _prompt_parts(body: dict[str, Any], template: Template) -> tuple[list[str], int]:
    """Return the texts to tokenize in `body` and the tokens counted without a tokenizer.

    A body with nothing in it gives nothing, not the template's markers: there was nothing to bill.
    """
    if "messages" in body:
        texts, counted, overhead = _chat_parts(body, template)
    elif "input" in body:  # embeddings: no template
        texts, counted = _inputs(body["input"])
        overhead = 0
    else:  # completions or FIM
        texts, counted = _inputs(body.get("prompt"))
        overhead = template.start
        suffix = body.get("suffix")
        if isinstance(suffix, str) and suffix:
            texts.append(suffix)
            overhead += template.fim
    if not any(texts) and not counted:
        return [], 0
    return texts, counted + overhead


def _chat_parts(body: dict[str, Any], template: Template) -> tuple[list[str], int, int]:
    """Return a chat body's texts, its media tokens and its template's tokens."""
    messages = body.get("messages") or []
    texts: list[str] = []
    media, overhead = 0, template.start if messages else 0
    for message in messages:
        overhead += template.answer if message.get("role") == "assistant" else template.turn
        more, images = _content(message.get("content"))
        texts += more
        media += images
        if message.get("tool_calls"):
            texts.append(json.dumps(message["tool_calls"], ensure_ascii=False))
    if body.get("tools"):
        texts.append(json.dumps(body["tools"], ensure_ascii=False))
    return texts, media, overhead


def _content(content: Any) -> tuple[list[str], int]:
    """Return the texts of a message's content and the flat tokens of its image or other media parts."""
    if isinstance(content, str):
        return [content], 0
    if not isinstance(content, list):
        return [], 0
    texts, media = [], 0
    for part in content:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str):
            texts.append(text)
        else:
            media += IMAGE_TOKENS
    return texts, media


def _inputs(value: Any) -> tuple[list[str], int]:
    """Return the texts of a prompt or embeddings input, and its token ids already counted.

    Accepted: a string, a list of strings, a list of token ids, a list of token-id lists.
    """
    if isinstance(value, str):
        return [value], 0
    if not isinstance(value, list):
        return [], 0
    texts, ids = [], 0
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, int):
            ids += 1
        elif isinstance(item, list):
            ids += len(item)
    return texts, ids


def _count_all(name: str, texts: Iterable[str], *, provider: str, model: str) -> int:
    texts = [t for t in texts if t]
    if not texts:
        return 0
    encode = tokenizer(name)
    if encode is not None:
        try:
            return sum(_count(encode, text) for text in texts)
        except Exception:
            logger.debug("Tokenizer %s failed for %s/%s; estimating from bytes", name, provider, model, exc_info=True)
    return sum(_byte_estimate(text) for text in texts)


def _count(encode: Encode, text: str) -> int:
    if len(text) <= EXACT_CHARS:
        return len(encode(text))
    step, size = len(text) // SAMPLES, EXACT_CHARS // SAMPLES
    counted = sum(len(encode(text[i * step : i * step + size])) for i in range(SAMPLES))
    return round(counted * len(text) / (size * SAMPLES))


def _byte_estimate(text: str) -> int:
    """Return len(UTF-8 bytes) / 4 rounded up: about four bytes a token in English text and code."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // 4)


def tokenizer(name: str) -> Encode | None:
    """Return the encoder of tokenizer `name`, loading it on first use; None if it cannot load."""
    if name in _loaded:
        return _loaded[name]
    # Created at first use, not import: threading.Lock is then gevent's when gevent has patched it.
    with _locks.setdefault(name, threading.Lock()):
        if name not in _loaded:
            _loaded[name] = _load(name)
    return _loaded[name]


def _load(name: str) -> Encode | None:
    LOADS[name] += 1
    try:
        return _off_hub(_read, _path(name))
    except Exception:
        logger.debug("Tokenizer %s did not load; estimating tokens from bytes", name, exc_info=True)
        return None


def _path(name: str) -> Path:
    spec = importlib.util.find_spec("mistral_common")  # without importing it: that alone takes ~45 ms
    if spec is None or spec.origin is None:
        raise FileNotFoundError("mistral-common is not installed")
    return Path(spec.origin).parent / "data" / FILES[name]


def _read(path: Path) -> Encode:
    from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    if not path.is_file():
        raise FileNotFoundError(path)
    loaded = Tekkenizer.from_file(path) if path.suffix == ".json" else SentencePieceTokenizer(path)
    return lambda text: loaded.encode(text, bos=False, eos=False)


def _off_hub(function: Callable[[Path], Encode], path: Path) -> Encode:
    """Run `function(path)` in gevent's thread pool when gevent has patched threading, else plainly.

    Loading Tekken is 1.3 s of CPU: run on the hub, it would freeze every other request of the worker.
    """
    monkey = sys.modules.get("gevent.monkey")  # never imported: gevent cannot be running
    if monkey is None or not monkey.is_module_patched("threading"):
        return function(path)
    import gevent

    result: Encode = gevent.get_hub().threadpool.apply(function, (path,))
    return result

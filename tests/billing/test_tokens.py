"""Token estimates for calls without upstream usage: which tokenizer, what a body counts, the fallbacks."""

import json
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

from billing import tokens

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of France?"
CONVERSATION = [
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Germany?"},
]

TEKKEN = "tekken_240718.json"
V1, V2, V3, V7 = (tokens.FILES[name] for name in ("v1", "v2", "v3", "v7"))


@pytest.fixture(scope="module")
def tekken() -> tokens.Encode:
    """Tekken, loaded once for the session by the module's own cache (1.3 s)."""
    encode = tokens.tokenizer("tekken")
    assert encode is not None
    return encode


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty tokenizer cache and load counter, both put back after the test."""
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "LOADS", Counter())


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("mistral", "open-mistral-7b", V3),  # 7B v0.3 on Mistral's API
        ("mistral", "open-mixtral-8x7b", V1),
        ("mistral", "open-mixtral-8x22b", V3),
        ("mistral", "mistral-embed", V1),
        ("mistral", "mistral-small-2402", V2),
        ("mistral", "mistral-large-2402", V2),
        ("mistral", "mistral-large-2407", V3),
        ("mistral", "mistral-large-2411", V7),
        ("mistral", "mistral-large-latest", TEKKEN),  # Large 3
        ("mistral", "mistral-small-2409", TEKKEN),
        ("mistral", "mistral-small-latest", TEKKEN),
        ("mistral", "mistral-medium-latest", TEKKEN),
        ("mistral", "open-mistral-nemo", TEKKEN),
        ("mistral", "ministral-8b-latest", TEKKEN),
        ("mistral", "pixtral-12b-2409", TEKKEN),
        ("mistral", "pixtral-large-latest", V7),
        ("mistral", "magistral-medium-latest", TEKKEN),
        ("codestral", "codestral-latest", TEKKEN),
        ("text-completion-codestral", "codestral-2405", V3),
        ("mistral", "codestral-mamba-latest", V3),
        ("mistral", "open-codestral-mamba", V3),
        ("mistral", "ft:open-mistral-7b:587a6b29:20240514:7e773925", V3),
        ("bedrock", "mistral.mistral-7b-instruct-v0:2", V1),
        ("bedrock", "mistral.mixtral-8x7b-instruct-v0:1", V1),
        ("bedrock", "mistral.mistral-large-2402-v1:0", V2),
        ("bedrock", "converse/mistral.mistral-large-2407-v1:0", V3),
        ("bedrock", "invoke/us.mistral.pixtral-large-2502-v1:0", V7),
        ("openai", "mistralai/Mistral-7B-Instruct-v0.2", V1),  # an OpenAI-compatible server
        ("openai", "gpt-4o", TEKKEN),
        ("anthropic", "claude-3-5-sonnet-20241022", TEKKEN),
        ("nobody", "some-model", TEKKEN),
    ],
)
def test_each_model_family_resolves_to_the_tokenizer_it_uses(provider, model, expected):
    assert tokens.FILES[tokens.resolve(provider, model).tokenizer] == expected


def test_mistral_models_get_mistral_markers_and_others_openai_ones():
    assert tokens.resolve("bedrock", "mistral.mistral-large-2407-v1:0").template == tokens.MISTRAL
    assert tokens.resolve("bedrock", "mistral.mistral-7b-instruct-v0:2").template == tokens.MISTRAL_V1
    assert tokens.resolve("mistral", "my-fine-tune").template == tokens.MISTRAL
    assert tokens.resolve("openai", "gpt-4o").template == tokens.FOREIGN


def test_text_counts_match_the_tokenizers_own_encode(tekken):
    from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer

    v3 = SentencePieceTokenizer(tokens._path("v3"))
    text = "Ünïcödé 你好 🙂 def f(x): return x * 2\n" * 20

    assert tokens.estimate_text("mistral", "open-mixtral-8x22b", text) == len(v3.encode(text, bos=False, eos=False))
    assert tokens.estimate_text("mistral", "open-mistral-nemo", QUESTION) == 7  # measured with mistral-common


@pytest.mark.parametrize("name", ["v1", "v2", "v3", "v7"])
def test_a_conversation_counts_what_mistral_common_encodes(name):
    from mistral_common.protocol.instruct.messages import AssistantMessage, UserMessage
    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    model = {"v1": "open-mixtral-8x7b", "v2": "mistral-large-2402", "v3": "mistral-large-2407"}.get(
        name, "mistral-large-2411"
    )
    kinds = {"user": UserMessage, "assistant": AssistantMessage}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = MistralTokenizer.from_file(tokens._path(name)).encode_chat_completion(
            ChatCompletionRequest(messages=[kinds[m["role"]](content=m["content"]) for m in CONVERSATION])
        )

    assert tokens.estimate_prompt("mistral", model, {"messages": CONVERSATION}) == len(reference.tokens)


def test_each_message_adds_its_chat_template_markers(tekken):
    texts = sum(tokens.estimate_text("mistral", "mistral-small-latest", m["content"]) for m in CONVERSATION)

    # <s>, [INST]…[/INST] around each user turn, </s> after the answer: 19, as mistral-common encodes it
    assert tokens.estimate_prompt("mistral", "mistral-small-latest", {"messages": CONVERSATION}) == texts + 6 == 19
    assert tokens.estimate_prompt("openai", "gpt-4o", {"messages": CONVERSATION}) == texts + 3 + 3 * 3


def test_an_image_part_counts_a_flat_estimate(tekken):
    text_only = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    with_image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": QUESTION},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 50_000}},
            ],
        }
    ]

    plain = tokens.estimate_prompt("mistral", "pixtral-12b-2409", {"messages": text_only})
    assert plain == 7 + 3
    assert (
        tokens.estimate_prompt("mistral", "pixtral-12b-2409", {"messages": with_image}) == plain + tokens.IMAGE_TOKENS
    )


def test_tool_calls_and_tool_definitions_count_as_their_json(tekken):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    calls = [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "22"},
    ]
    model = "mistral-small-latest"

    def json_tokens(value):
        return tokens.estimate_text("mistral", model, json.dumps(value, ensure_ascii=False))

    expected = (
        1 + 2 + 1 + 2 + 7 + tokens.estimate_text("mistral", model, "22") + json_tokens(calls) + json_tokens(tools)
    )
    assert tokens.estimate_prompt("mistral", model, {"messages": messages, "tools": tools}) == expected


def test_embeddings_token_id_lists_count_their_length(tekken):
    assert tokens.estimate_prompt("mistral", "mistral-embed", {"input": [[1, 2, 3], [4, 5]]}) == 5
    assert tokens.estimate_prompt("mistral", "mistral-embed", {"input": [101, 102, 103]}) == 3
    assert tokens.estimate_prompt("openai", "text-embedding-3-small", {"input": [QUESTION, QUESTION]}) == 14


def test_embeddings_strings_count_without_a_template():
    one = tokens.estimate_text("mistral", "mistral-embed", QUESTION)

    assert tokens.estimate_prompt("mistral", "mistral-embed", {"input": QUESTION}) == one
    assert tokens.estimate_prompt("mistral", "mistral-embed", {"input": [QUESTION, QUESTION]}) == 2 * one


def test_completion_and_fim_prompts(tekken):
    model = "codestral-latest"
    prefix, suffix = "def f(x):", "return y"
    prefix_tokens = tokens.estimate_text("codestral", model, prefix)

    assert tokens.estimate_prompt("codestral", model, {"prompt": prefix}) == 1 + prefix_tokens
    assert tokens.estimate_prompt("codestral", model, {"prompt": [prefix, prefix]}) == 1 + 2 * prefix_tokens
    # <s>[SUFFIX]suffix[PREFIX]prompt: 9 tokens, as mistral-common encodes it
    assert tokens.estimate_prompt("codestral", model, {"prompt": prefix, "suffix": suffix}) == 9


def test_an_unknown_model_is_estimated_with_tekken(tekken):
    assert tokens.estimate_text("somecloud", "mystery-model-9000", QUESTION) == 7
    assert tokens.estimate_prompt("somecloud", "mystery-model-9000", {"messages": CONVERSATION}) > 0


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": ""}]},
        {"prompt": ""},
        {"prompt": "", "suffix": ""},
        {"input": []},
        {"input": ""},
        {},
    ],
)
def test_empty_input_counts_zero(body, tekken):
    assert tokens.estimate_prompt("mistral", "mistral-small-latest", body) == 0


def test_empty_text_counts_zero():
    assert tokens.estimate_text("mistral", "mistral-small-latest", "") == 0


def test_a_tokenizer_that_cannot_load_falls_back_to_bytes(monkeypatch, fresh_cache, caplog):
    monkeypatch.setitem(tokens.FILES, "v3", "no-such-tokenizer.model.v3")
    caplog.set_level("DEBUG", logger="billing.tokens")

    assert tokens.estimate_text("mistral", "open-mixtral-8x22b", "abcdefghi") == 3  # 9 bytes / 4, up
    assert tokens.estimate_text("mistral", "open-mixtral-8x22b", "é") == 1
    assert tokens.estimate_prompt("mistral", "open-mixtral-8x22b", {"prompt": "abcd"}) == 1 + 1
    assert "did not load" in caplog.text
    assert tokens.LOADS["v3"] == 1  # a failed load is not retried on every call


def test_a_tokenizer_that_raises_falls_back_to_bytes(monkeypatch, fresh_cache):
    def broken(text: str) -> list[int]:
        raise RuntimeError("tokenizer broke")

    monkeypatch.setitem(tokens._loaded, "v3", broken)

    assert tokens.estimate_text("mistral", "open-mixtral-8x22b", "abcdefghi") == 3


def test_an_unreadable_body_falls_back_to_bytes():
    assert tokens.estimate_prompt("mistral", "mistral-small-latest", {"messages": ["not an object"]}) > 0


def test_a_tokenizer_loads_once(fresh_cache):
    first = tokens.estimate_text("mistral", "open-mixtral-8x7b", QUESTION)
    second = tokens.estimate_text("mistral", "open-mixtral-8x7b", QUESTION)

    assert first == second > 0
    assert dict(tokens.LOADS) == {"v1": 1}


def test_a_very_long_text_is_counted_by_samples(monkeypatch):
    text = "The quick brown fox jumps over the lazy dog. " * 2_000
    exact = tokens.estimate_text("mistral", "open-mixtral-8x22b", text)
    monkeypatch.setattr(tokens, "EXACT_CHARS", 8_000)

    assert tokens.estimate_text("mistral", "open-mixtral-8x22b", text) == pytest.approx(exact, rel=0.02)


def test_under_gevent_a_tokenizer_loads_in_the_thread_pool():
    """Off the hub, a 1.3 s Tekken load does not freeze the worker's other requests."""
    script = """
from gevent import monkey; monkey.patch_all()
from billing import tokens
real_ident = monkey.get_original("threading", "get_ident")
hub_thread, loaded_in = real_ident(), []
read = tokens._read
tokens._read = lambda path: (loaded_in.append(real_ident()), read(path))[1]
assert tokens.estimate_text("mistral", "open-mixtral-8x22b", "hello") > 0
print(loaded_in != [] and loaded_in[0] != hub_thread)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.stdout.strip() == "True", done.stderr

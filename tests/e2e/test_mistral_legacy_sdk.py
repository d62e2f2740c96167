"""The legacy `mistralai==0.4.2` MistralClient against a real Tollgate (run from its own venv)."""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEGACY_PYTHON = ROOT / ".venv-legacy" / "bin" / "python"
SCRIPT = Path(__file__).with_name("legacy_client.py")

pytestmark = pytest.mark.skipif(
    not LEGACY_PYTHON.exists(), reason="legacy SDK venv missing: `make test` creates .venv-legacy"
)


def legacy(tollgate, operation: str, key: str | None = None) -> dict:
    done = subprocess.run(
        [str(LEGACY_PYTHON), str(SCRIPT), tollgate.url, key or tollgate.key, operation],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_reference_page_basic_chat(tollgate, fake_mistral):
    r = legacy(tollgate, "chat")
    assert r["content"].startswith("Echo")
    assert r["finish_reason"] == "stop"
    assert r["total_tokens"] > 0


def test_chat_with_chat_messages(tollgate, fake_mistral):
    fake_mistral.reply("Hello from nemo")
    assert legacy(tollgate, "chat_messages")["content"] == "Hello from nemo"


def test_tool_calls_come_with_string_content(tollgate, fake_mistral):
    r = legacy(tollgate, "chat_tools")
    assert (r["tool"], r["content"], r["finish_reason"]) == ("get_current_weather", "", "tool_calls")


def test_chat_stream(tollgate, fake_mistral):
    fake_mistral.reply_stream(["a", "b", "c"], prompt_tokens=3, completion_tokens=3)
    assert legacy(tollgate, "chat_stream") == {"text": "abc", "usage": 6}


def test_embeddings(tollgate, fake_mistral):
    r = legacy(tollgate, "embeddings")
    assert (r["count"], r["dims"]) == (2, 8) and r["id"]


def test_fim_completion(tollgate, fake_mistral):
    assert legacy(tollgate, "completion")["content"] == "return a + b"
    assert legacy(tollgate, "completion_stream")["text"]


def test_list_models(tollgate):
    assert {"mistral-small-latest", "mistral-nemo", "codestral-latest"} <= set(legacy(tollgate, "list_models")["ids"])


def test_wrong_key_is_refused(tollgate):
    r = legacy(tollgate, "chat", key="sk-wrong-0000000000000000")
    assert r["status"] == 401

"""The reference page's config file and examples, unchanged, through a real Tollgate.

`examples/litellm_config.yaml` is LiteLLM's Mistral example verbatim (plus its master key).
Only the environment differs from production: MISTRAL_API_BASE points the default Mistral URL
at the local fake, as LiteLLM also honours it.
"""

import json
import subprocess
from pathlib import Path

import openai
import pytest

from tests.e2e.server import ROOT, running
from tests.fakes.mistral import FakeMistral

LEGACY_PYTHON = ROOT / ".venv-legacy" / "bin" / "python"


@pytest.fixture(scope="module")
def reference_tollgate(mistral_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    env = {"MISTRAL_API_KEY": FakeMistral.API_KEY, "MISTRAL_API_BASE": mistral_server.url}
    with running(ROOT / "examples" / "litellm_config.yaml", key="sk-1234", tmp=tmp, env=env, workers=1) as server:
        yield server


@pytest.mark.skipif(not LEGACY_PYTHON.exists(), reason="legacy SDK venv missing: `make test` creates it")
def test_basic_chat_completion_example(reference_tollgate, fake_mistral):
    done = subprocess.run(
        [
            str(LEGACY_PYTHON),
            str(Path(__file__).with_name("legacy_client.py")),
            reference_tollgate.url,
            "sk-1234",
            "chat",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["content"].startswith("Echo")
    assert fake_mistral.last_request.headers["authorization"] == f"Bearer {FakeMistral.API_KEY}"


def test_tool_use_example(reference_tollgate, fake_mistral):
    client = openai.OpenAI(api_key="sk-1234", base_url=reference_tollgate.url, max_retries=0)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    },
                    "required": ["location"],
                },
            },
        }
    ]
    messages = [{"role": "user", "content": "What's the weather like in Boston today?"}]

    completion = client.chat.completions.create(
        model="mistral-small-latest", messages=messages, tools=tools, tool_choice="auto"
    )

    assert completion.choices[0].message.tool_calls[0].function.name == "get_current_weather"


def test_vision_example(reference_tollgate, fake_mistral):
    client = openai.OpenAI(api_key="sk-1234", base_url=reference_tollgate.url, max_retries=0)
    url = (
        "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/Gfp-wisconsin-madison-the-nature-boardwalk.jpg/"
        "2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg"
    )
    response = client.chat.completions.create(
        model="mistral-small-latest",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in this image?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
        max_tokens=300,
    )

    assert response.choices[0].message.content
    assert fake_mistral.last_request.json["messages"][0]["content"][1]["image_url"]["url"] == url


def test_nemo_alias_routes_to_open_mistral_nemo(reference_tollgate, fake_mistral):
    client = openai.OpenAI(api_key="sk-1234", base_url=reference_tollgate.url + "/v1", max_retries=0)
    client.chat.completions.create(model="mistral-nemo", messages=[{"role": "user", "content": "Hi"}])
    assert fake_mistral.last_request.json["model"] == "open-mistral-nemo"

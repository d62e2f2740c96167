"""One real Tollgate for the end-to-end tests, serving aliases that point at the fake providers."""

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from mistralai.client import Mistral

from tests.e2e.server import Tollgate, running
from tests.fakes.mistral import FakeMistral

E2E_KEY = "sk-e2e-master-key-abcdefghijklmnopqrstuvwxyz"

CONFIG = """\
model_list:
  - model_name: mistral-small-latest
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: "os.environ/E2E_MISTRAL_API_KEY"
      api_base: {mistral}
  - model_name: mistral-nemo
    litellm_params:
      model: mistral/open-mistral-nemo
      api_key: "os.environ/E2E_MISTRAL_API_KEY"
      api_base: {mistral}
  - model_name: codestral-latest
    litellm_params:
      model: codestral/codestral-latest
      api_key: "os.environ/E2E_MISTRAL_API_KEY"
      api_base: {mistral}
  - model_name: codestral-text
    litellm_params:
      model: text-completion-codestral/codestral-latest
      api_key: "os.environ/E2E_MISTRAL_API_KEY"
      api_base: {mistral}
  - model_name: mistral-embed
    litellm_params:
      model: mistral/mistral-embed
      api_key: "os.environ/E2E_MISTRAL_API_KEY"
      api_base: {mistral}
  - model_name: slow-model
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: "os.environ/E2E_MISTRAL_API_KEY"
      api_base: {mistral}
      timeout: 1
      stream_timeout: 1
  - model_name: mock-model
    litellm_params:
      model: mistral/mistral-small-latest
      mock_response: "This is a mock answer."

general_settings:
  master_key: {key}
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def tollgate(mistral_server: FakeMistral, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    tmp = tmp_path_factory.mktemp("tollgate")
    config = Path(tmp / "litellm_config.yaml")
    config.write_text(CONFIG.format(mistral=mistral_server.url, key=E2E_KEY))
    with running(config, key=E2E_KEY, tmp=tmp, env={"E2E_MISTRAL_API_KEY": FakeMistral.API_KEY}) as server:
        yield server


# --- the two SDKs, pointed at a module's own `gateway` (a provider's e2e server) ---------------


@pytest.fixture
def client(gateway: Tollgate) -> Iterator[openai.OpenAI]:
    """The openai SDK on the gateway's /v1, failing fast: no retries of its own, a 20 s timeout."""
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=gateway.key, max_retries=0, timeout=20) as sdk:
        yield sdk


@pytest.fixture
def mistral(gateway: Tollgate) -> Mistral:
    """The current Mistral SDK on the gateway (its server_url takes no /v1)."""
    return Mistral(api_key=gateway.key, server_url=gateway.url, timeout_ms=20000)

"""Fixtures shared by the /model/* API tests (test_model_api.py, test_model_info_api.py)."""

import textwrap

import pytest

from proxy import configfile, deployments
from proxy.models import Deployment

CONFIG = """\
model_list:
  - model_name: from-file
    litellm_params:
      model: mistral/mistral-small-latest
      api_key: os.environ/TG_TEST_MISTRAL_KEY
"""


@pytest.fixture
def no_caches(settings):
    """Keys and deployments read afresh on every request: a change is seen by the next call."""
    settings.TOLLGATE_AUTH_CACHE_SECONDS = 0
    settings.TOLLGATE_DEPLOYMENT_CACHE_SECONDS = 0


@pytest.fixture
def config_deployment(tmp_path) -> Deployment:
    """A deployment loaded from a config file (which the API may not change)."""
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    deployments.load(configfile.read(path))
    return Deployment.objects.get(model_name="from-file")

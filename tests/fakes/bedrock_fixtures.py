"""pytest fixtures for Bedrock tests: the fake Bedrock, an AWS environment that can only reach it, and
deployments pointing at it. Import the fixtures into a test module to use them.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.bedrock import AWS_VARIABLES, FakeBedrock

MODEL = "bedrock/mistral.mistral-large-2407-v1:0"


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """Leave boto3 nothing to find but what a test gives it: no real keys, files or metadata service."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "aws-credentials"))


@pytest.fixture(scope="session")
def bedrock_server() -> Iterator[FakeBedrock]:
    with FakeBedrock.running() as server:
        yield server


@pytest.fixture
def fake_bedrock(bedrock_server: FakeBedrock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBedrock]:
    """The fake Bedrock, reset, with boto3 cut off from anything but it (and fresh clients)."""
    from proxy.providers import bedrock_client

    isolate_aws(monkeypatch, tmp_path)
    bedrock_client.forget()
    bedrock_server.reset()
    yield bedrock_server
    bedrock_server.reset()
    bedrock_client.forget()


@pytest.fixture
def bedrock_for(db) -> Callable[..., "object"]:
    """Create a deployment serving `alias` from the fake Bedrock with the test keys (override any field)."""
    from proxy.models import Deployment

    def make(
        fake: FakeBedrock,
        *,
        alias: str = "large",
        model: str = MODEL,
        credentials: dict | None = None,
        params: dict | None = None,
        **fields,
    ):
        if credentials is None:
            credentials = {
                "aws_access_key_id": fake.ACCESS_KEY_ID,
                "aws_secret_access_key": fake.SECRET_ACCESS_KEY,
            }
        settings = {"aws_region_name": fake.REGION, "aws_bedrock_runtime_endpoint": fake.root, **(params or {})}
        return Deployment.objects.create(
            model_name=alias,
            litellm_model=model,
            credentials=credentials,
            params={k: v for k, v in settings.items() if v is not None},
            **fields,
        )

    return make

"""pytest fixtures for Google tests: the fake Google, an environment where google-auth can reach only it,
and deployments pointing at it. Use with `pytest_plugins = ["tests.fakes.google_fixtures"]`.
"""

import json
from collections.abc import Callable, Iterator

import pytest

from tests.fakes.google import GOOGLE_VARIABLES, ISOLATION, FakeGoogle

PROJECT = "tollgate-test"
LOCATION = "europe-west4"


def isolate_google(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave google-auth nothing to find but what a test gives it: no ADC, no metadata server."""
    for name in GOOGLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in ISOLATION.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def google_server() -> Iterator[FakeGoogle]:
    with FakeGoogle.running() as server:
        yield server


@pytest.fixture
def fake_google(google_server: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGoogle]:
    """The fake Google, reset, with cached tokens forgotten and google-auth cut off from anything else."""
    from proxy.providers import vertex_auth

    isolate_google(monkeypatch)
    vertex_auth.forget()
    google_server.reset()
    yield google_server
    google_server.reset()
    vertex_auth.forget()


@pytest.fixture
def vertex_for(db) -> Callable[..., "object"]:
    """Create a Vertex deployment serving `alias` from the fake with the test service account."""
    from proxy.models import Deployment

    def make(
        fake: FakeGoogle,
        *,
        alias: str = "flash",
        model: str = "vertex_ai/gemini-2.5-flash",
        credentials: dict | None = None,
        params: dict | None = None,
        **fields,
    ):
        if credentials is None:
            credentials = {"vertex_credentials": json.dumps(fake.service_account())}
        settings = {"vertex_project": PROJECT, "vertex_location": LOCATION, **(params or {})}
        fields.setdefault("api_base", fake.root)
        return Deployment.objects.create(
            model_name=alias,
            litellm_model=model,
            credentials=credentials,
            params={k: v for k, v in settings.items() if v is not None},
            **fields,
        )

    return make


@pytest.fixture
def gemini_for(db) -> Callable[..., "object"]:
    """Create an AI Studio deployment serving `alias` from the fake with the test API key."""
    from proxy.models import Deployment

    def make(fake: FakeGoogle, *, alias: str = "gemini", model: str = "gemini/gemini-2.5-flash", **fields):
        fields.setdefault("api_key", fake.API_KEY)
        fields.setdefault("api_base", fake.gemini_url)
        return Deployment.objects.create(model_name=alias, litellm_model=model, **fields)

    return make

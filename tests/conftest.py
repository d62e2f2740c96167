"""Fixtures shared by every test: the local fake providers, and deployments pointing at them."""

from collections.abc import Callable, Iterator

import pytest

from tests.fakes.mistral import FakeMistral

MASTER_KEY = "sk-test-master-key-0123456789abcdef"  # config/settings/test.py sets the same
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(autouse=True)
def fresh_key_cache():
    """Each test starts with an empty key cache: the generation counter rolls back with each
    test's transaction, so a record cached by an earlier test could otherwise look current."""
    from proxy import deployment_state
    from tenants import generation, keys, redis_limits

    keys.clear_cache()
    generation.forget()
    deployment_state.reset()  # no cooldown or usage count carries over from an earlier test
    redis_limits._installation = None  # each test database gets its own counters in Redis
    yield
    keys.clear_cache()
    generation.forget()
    deployment_state.reset()


@pytest.fixture(scope="session")
def mistral_server() -> Iterator[FakeMistral]:
    with FakeMistral.running() as server:
        yield server


@pytest.fixture
def fake_mistral(mistral_server: FakeMistral) -> Iterator[FakeMistral]:
    """A Mistral-compatible server on 127.0.0.1, scripted by each test."""
    mistral_server.reset()
    yield mistral_server
    mistral_server.reset()


@pytest.fixture
def auth() -> dict[str, str]:
    """Headers for Django's test client carrying the master key."""
    return {"HTTP_AUTHORIZATION": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def deployment_for(db) -> Callable[..., "object"]:
    """Create a deployment serving `alias` from a fake server (`model` is provider/model-id)."""
    from proxy.models import Deployment

    def make(fake, *, alias: str = "small", model: str = "mistral/mistral-small-latest", **fields):
        fields.setdefault("api_key", fake.API_KEY if fake is not None else "")
        return Deployment.objects.create(
            model_name=alias, litellm_model=model, api_base=fake.url if fake is not None else "", **fields
        )

    return make

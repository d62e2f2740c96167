"""Fixtures for keys, users and teams: two teams everywhere, so isolation is always tested."""

import json
from collections.abc import Callable

import pytest

from tenants import keys
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey
from tests.conftest import HI


@pytest.fixture
def make_key(db) -> Callable[..., tuple[VirtualKey, str]]:
    """Create a virtual key; return (row, secret). Fields as on VirtualKey (team=, user=, …)."""

    def make(**fields) -> tuple[VirtualKey, str]:
        return keys.create(**fields)

    return make


@pytest.fixture
def team(db) -> Team:
    return Team.objects.create(team_id="team-a", team_alias="Team A")


@pytest.fixture
def other_team(db) -> Team:
    return Team.objects.create(team_id="team-b", team_alias="Team B")


@pytest.fixture
def make_user(db) -> Callable[..., InternalUser]:
    def make(user_id: str, *, team: Team | None = None, role: str = "user", **fields) -> InternalUser:
        user = InternalUser.objects.create(user_id=user_id, **fields)
        if team is not None:
            TeamMembership.objects.create(team=team, user=user, role=role)
        return user

    return make


def bearer(secret: str) -> dict[str, str]:
    """Django test-client headers carrying `secret`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


class ManagementClient:
    """Calls management routes as a JSON client would, running on-commit callbacks (generation bumps)."""

    def __init__(self, client, capture) -> None:
        self.client = client
        self.capture = capture

    def post(self, path: str, body, headers: dict[str, str]):
        with self.capture(execute=True):
            return self.client.post(path, data=json.dumps(body), content_type="application/json", **headers)

    def get(self, path: str, headers: dict[str, str], **query):
        with self.capture(execute=True):
            return self.client.get(path, query, **headers)


@pytest.fixture
def api(client, django_capture_on_commit_callbacks, settings) -> ManagementClient:
    """A management-API client; key caches see every change at once (no polling interval)."""
    settings.TOLLGATE_AUTH_CACHE_SECONDS = 0
    return ManagementClient(client, django_capture_on_commit_callbacks)


def error_of(response, status: int) -> dict:
    """The error envelope of a response that must have `status`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


@pytest.fixture
def generate_key(api, auth) -> Callable[..., dict]:
    """POST /key/generate with the master key; return the answer (the only one holding the key)."""

    def generate(**body) -> dict:
        response = api.post("/key/generate", body, auth)
        assert response.status_code == 200, response.content
        return response.json()

    return generate


@pytest.fixture
def alice(make_user, team):
    """Admin of team A."""
    return make_user("alice", team=team, role="admin", user_email="alice@example.com")


@pytest.fixture
def bob(make_user, team):
    """A plain member of team A."""
    return make_user("bob", team=team, user_email="bob@example.com")


@pytest.fixture
def carol(make_user, other_team):
    """Admin of team B."""
    return make_user("carol", team=other_team, role="admin")


@pytest.fixture
def alice_key(make_key, alice):
    return bearer(make_key(user=alice)[1])


@pytest.fixture
def bob_key(make_key, bob):
    return bearer(make_key(user=bob)[1])


@pytest.fixture
def small(deployment_for):
    """A mock model: calls to it need no provider."""
    return deployment_for(None, alias="small", model="mistral/x", mock_response="hi")


def chat(client, headers, model="small"):
    """POST one chat call to the LLM API with `headers` (see `bearer`)."""
    return client.post(
        "/v1/chat/completions", data={"model": model, "messages": HI}, content_type="application/json", **headers
    )

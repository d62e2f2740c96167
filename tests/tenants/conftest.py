"""Fixtures for keys, users and teams: two teams everywhere, so isolation is always tested."""

from collections.abc import Callable

import pytest

from tenants import keys
from tenants.models import InternalUser, Team, TeamMembership, VirtualKey


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

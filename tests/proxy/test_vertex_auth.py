"""Vertex service-account tokens: minted through the fake token endpoint (which verifies the JWT), cached,
refreshed before they expire, and every way vertex_credentials can be written."""

import json
import threading

import pytest

from proxy.exceptions import ProviderMisconfigured, UpstreamError
from proxy.providers import vertex_auth
from tests.conftest import HI
from tests.fakes.google_auth import ServiceAccountKey
from tests.proxy.test_chat_api import post

pytest_plugins = ["tests.fakes.google_fixtures"]


def test_a_token_is_minted_once_and_shared(fake_google):
    source = vertex_auth.source_for(fake_google.service_account())

    tokens = {source.token() for _ in range(5)}

    assert len(tokens) == 1 and fake_google.token_requests == 1
    assert vertex_auth.source_for(fake_google.service_account()) is source  # one per service account


def test_racing_requests_without_a_token_mint_one(fake_google):
    source = vertex_auth.source_for(fake_google.service_account())
    tokens: list[str] = []

    threads = [threading.Thread(target=lambda: tokens.append(source.token())) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(tokens)) == 1 and fake_google.token_requests == 1


def test_a_stale_token_is_refreshed_before_it_expires(fake_google):
    fake_google.token_lifetime = 120  # within google-auth's 3 min 45 s refresh margin: stale at once
    source = vertex_auth.source_for(fake_google.service_account())

    first, second = source.token(), source.token()

    assert first != second and fake_google.token_requests == 2


def test_a_stale_token_is_still_used_when_its_refresh_fails(fake_google):
    fake_google.token_lifetime = 120
    source = vertex_auth.source_for(fake_google.service_account())
    first = source.token()
    fake_google.token_failure = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}

    assert source.token() == first  # still valid for two minutes: the call goes on


def test_a_key_the_token_endpoint_does_not_know_is_an_auth_error_without_secrets(fake_google):
    stranger = ServiceAccountKey().info(fake_google.token_uri)  # same account name, another key pair

    with pytest.raises(UpstreamError) as e:
        vertex_auth.source_for(stranger).token()

    assert (e.value.status, e.value.code) == (403, "upstream_auth_error")
    assert "invalid_grant" in e.value.message
    assert "PRIVATE KEY" not in e.value.message and "Signature" not in e.value.message


def test_an_unreachable_token_endpoint_is_a_502(fake_google):
    info = fake_google.service_account(token_uri="http://127.0.0.1:9/token")

    with pytest.raises(Exception) as e:
        vertex_auth.source_for(info).token()

    assert type(e.value).__name__ == "UpstreamUnavailable"


def test_credentials_from_a_file(fake_google, tmp_path):
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(fake_google.service_account()))

    assert vertex_auth.service_account_info(str(path))["client_email"] == fake_google.service_account()["client_email"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("/nonexistent/sa.json", "neither a JSON document nor a readable file"),
        ('{"type": "authorized_user", "client_email": "x", "private_key": "y", "token_uri": "z"}', "service-account"),
        ('{"type": "service_account", "client_email": "x"}', "missing private_key, token_uri"),
    ],
)
def test_unusable_credentials_say_why_without_their_contents(value, problem):
    with pytest.raises(ProviderMisconfigured) as e:
        vertex_auth.service_account_info(value)

    assert problem in e.value.message


def test_a_private_key_that_does_not_parse_is_misconfigured(fake_google):
    info = fake_google.service_account(private_key="-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n")

    with pytest.raises(ProviderMisconfigured) as e:
        vertex_auth.source_for(info)

    assert "BEGIN" not in e.value.message


# --- through the API --------------------------------------------------------------------------------


def test_credentials_from_an_environment_variable(client, auth, fake_google, vertex_for, monkeypatch):
    monkeypatch.setenv("TEST_VERTEX_SA", json.dumps(fake_google.service_account()))
    vertex_for(fake_google, credentials={"vertex_credentials": "os.environ/TEST_VERTEX_SA"})

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.status_code == 200, r.content
    assert fake_google.bearer_tokens[-1] in fake_google.issued


def test_credentials_as_a_file_path(client, auth, fake_google, vertex_for, tmp_path):
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(fake_google.service_account()))
    vertex_for(fake_google, credentials={"vertex_credentials": str(path)})

    assert post(client, auth, {"model": "flash", "messages": HI}).status_code == 200


def test_application_default_credentials(client, auth, fake_google, vertex_for, tmp_path, monkeypatch):
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(fake_google.service_account()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    vertex_for(fake_google, credentials={})

    assert post(client, auth, {"model": "flash", "messages": HI}).status_code == 200


def test_the_project_defaults_to_the_service_accounts(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, params={"vertex_project": None, "vertex_location": None})

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.status_code == 200
    assert fake_google.last_request.path.startswith("/v1/projects/tollgate-test/locations/us-central1/")


def test_an_unset_credentials_variable_is_a_500_naming_it(client, auth, fake_google, vertex_for):
    vertex_for(fake_google, credentials={"vertex_credentials": "os.environ/NOT_SET_VERTEX_SA"})

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.status_code == 500
    assert r.json()["error"]["code"] == "provider_misconfigured"
    assert "NOT_SET_VERTEX_SA" in r.json()["error"]["message"]


def test_a_refused_service_account_is_a_502(client, auth, fake_google, vertex_for):
    vertex_for(
        fake_google, credentials={"vertex_credentials": json.dumps(ServiceAccountKey().info(fake_google.token_uri))}
    )

    r = post(client, auth, {"model": "flash", "messages": HI})

    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_auth_error"
    assert "BEGIN" not in r.content.decode()

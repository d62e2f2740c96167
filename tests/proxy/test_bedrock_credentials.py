"""Where Bedrock deployments get their AWS credentials, and the clients built from them.

Each case signs real requests that the fake Bedrock verifies: a credential that reached the wrong
place, or none, fails the signature check instead of passing unnoticed.
"""

import datetime

import pytest

from proxy.providers import bedrock_client
from tests.conftest import HI
from tests.fakes.bedrock import FakeBedrock
from tests.proxy.test_chat_api import post

pytest_plugins = ["tests.fakes.bedrock_fixtures"]  # fake_bedrock, bedrock_for

ROLE = "arn:aws:iam::123456789012:role/tollgate-bedrock"
NO_KEYS: dict = {}


def chat(client, auth, alias="large"):
    r = post(client, auth, {"model": alias, "messages": HI})
    assert r.status_code == 200, r.content
    return r


def test_keys_from_environment_references(client, auth, fake_bedrock, bedrock_for, monkeypatch):
    monkeypatch.setenv("BEDROCK_KEY_ID", FakeBedrock.ACCESS_KEY_ID)
    monkeypatch.setenv("BEDROCK_SECRET", FakeBedrock.SECRET_ACCESS_KEY)
    monkeypatch.setenv("BEDROCK_REGION", "us-east-1")
    bedrock_for(
        fake_bedrock,
        credentials={
            "aws_access_key_id": "os.environ/BEDROCK_KEY_ID",
            "aws_secret_access_key": "os.environ/BEDROCK_SECRET",
        },
        params={"aws_region_name": "os.environ/BEDROCK_REGION"},
    )

    chat(client, auth)

    assert fake_bedrock.signers == [FakeBedrock.ACCESS_KEY_ID]


def test_a_session_token_is_sent_and_signed(client, auth, fake_bedrock, bedrock_for):
    fake_bedrock.keys.add("ASIATEMPORARYKEY0001", "temporary-secret", "the-session-token")
    bedrock_for(
        fake_bedrock,
        credentials={
            "aws_access_key_id": "ASIATEMPORARYKEY0001",
            "aws_secret_access_key": "temporary-secret",
            "aws_session_token": "the-session-token",
        },
    )

    chat(client, auth)

    sent = fake_bedrock.last_request
    assert sent.headers["x-amz-security-token"] == "the-session-token"
    assert "x-amz-security-token" in sent.headers["authorization"]


def test_without_keys_boto3s_default_chain_is_used(client, auth, fake_bedrock, bedrock_for, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FakeBedrock.ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FakeBedrock.SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bedrock_for(fake_bedrock, credentials=NO_KEYS, params={"aws_region_name": None})

    chat(client, auth)

    assert fake_bedrock.signers == [FakeBedrock.ACCESS_KEY_ID]
    assert "/us-east-1/bedrock/" in fake_bedrock.last_request.headers["authorization"]


def test_a_named_profile_is_read_from_the_shared_credentials_file(client, auth, fake_bedrock, bedrock_for, tmp_path):
    (tmp_path / "aws-credentials").write_text(
        f"[bedrock-team]\naws_access_key_id = {FakeBedrock.ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {FakeBedrock.SECRET_ACCESS_KEY}\n"
    )
    bedrock_for(fake_bedrock, credentials=NO_KEYS, params={"aws_profile_name": "bedrock-team"})

    chat(client, auth)

    assert fake_bedrock.signers == [FakeBedrock.ACCESS_KEY_ID]


def test_no_credentials_anywhere_is_a_clear_misconfiguration(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, credentials=NO_KEYS)

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 500
    assert "no usable AWS credentials" in r.json()["error"]["message"]
    assert not fake_bedrock.requests


def test_an_unknown_profile_is_a_clear_misconfiguration(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(fake_bedrock, credentials=NO_KEYS, params={"aws_profile_name": "nobody"})

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 500
    assert "'nobody'" in r.json()["error"]["message"]


def test_an_unknown_access_key_is_a_502_naming_the_problem(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(
        fake_bedrock, credentials={"aws_access_key_id": "AKIAUNKNOWN000000000", "aws_secret_access_key": "x" * 40}
    )

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "upstream_auth_error"
    assert "does not recognise the deployment's access key id" in error["message"]
    assert "AKIAUNKNOWN000000000" not in error["message"]


# --- STS AssumeRole -------------------------------------------------------------------------------


@pytest.fixture
def role_deployment(fake_bedrock, bedrock_for):
    return bedrock_for(
        fake_bedrock,
        params={"aws_role_name": ROLE, "aws_session_name": "tollgate-test", "aws_sts_endpoint": fake_bedrock.root},
    )


def test_a_role_is_assumed_and_its_temporary_keys_sign_the_calls(client, auth, fake_bedrock, role_deployment):
    chat(client, auth)
    chat(client, auth)

    [assumed] = fake_bedrock.assumed  # once: the credentials are good for an hour
    assert (assumed["RoleArn"], assumed["RoleSessionName"]) == (ROLE, "tollgate-test")
    sts_call = next(r for r in fake_bedrock.requests if r.path == "/")
    assert f"Credential={FakeBedrock.ACCESS_KEY_ID}/" in sts_call.headers["authorization"]  # signed by the source keys
    assert "/sts/aws4_request" in sts_call.headers["authorization"]
    assert len(fake_bedrock.signers) == 2
    assert all(signer.startswith("ASIA") for signer in fake_bedrock.signers)
    assert fake_bedrock.last_request.headers["x-amz-security-token"]


def test_role_credentials_are_refreshed_before_they_expire(client, auth, fake_bedrock, role_deployment):
    fake_bedrock.role_lifetime = datetime.timedelta(minutes=5)  # inside botocore's refresh window

    chat(client, auth)
    chat(client, auth)

    assert len(fake_bedrock.assumed) >= 2
    assert len(set(fake_bedrock.signers)) == 2  # each call signed with freshly issued keys


def test_the_sts_endpoint_can_come_from_the_environment(client, auth, fake_bedrock, bedrock_for, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", fake_bedrock.root)
    bedrock_for(fake_bedrock, params={"aws_role_name": ROLE})

    chat(client, auth)

    assert len(fake_bedrock.assumed) == 1
    assert fake_bedrock.assumed[0]["RoleSessionName"].startswith("tollgate-")


def test_a_refused_assume_role_is_a_502_naming_the_problem(client, auth, fake_bedrock, bedrock_for):
    bedrock_for(
        fake_bedrock,
        credentials={"aws_access_key_id": FakeBedrock.ACCESS_KEY_ID, "aws_secret_access_key": "wrong-secret"},
        params={"aws_role_name": ROLE, "aws_sts_endpoint": fake_bedrock.root},
    )

    r = post(client, auth, {"model": "large", "messages": HI})

    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_auth_error"
    assert "wrong-secret" not in r.text
    assert not fake_bedrock.assumed


# --- clients --------------------------------------------------------------------------------------


def test_one_client_per_deployment_settings_with_a_pool_sized_for_the_worker(
    client, auth, fake_bedrock, bedrock_for, settings
):
    bedrock_for(fake_bedrock)
    chat(client, auth)
    chat(client, auth)
    post(client, auth, {"model": "large", "messages": HI, "stream": True})

    assert len(bedrock_client._clients) == 1  # stream and JSON share it when their timeouts match
    [made] = bedrock_client._clients.values()
    assert made.meta.config.max_pool_connections == settings.TOLLGATE_UPSTREAM_POOL_SIZE
    assert made.meta.config.retries["total_max_attempts"] == 1
    assert made.meta.endpoint_url == fake_bedrock.root


def test_client_settings_never_print_secrets():
    shown = repr(bedrock_client.ClientSettings(region="eu-west-3", access_key_id="AKIA1", secret_access_key="s3cr3t"))

    assert "s3cr3t" not in shown and "eu-west-3" in shown

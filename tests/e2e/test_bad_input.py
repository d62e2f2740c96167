"""Bad input over real HTTP: a clear 4xx in the error envelope, and the server fine afterwards."""

import json
import subprocess
import sys

import pytest
import urllib3

from tests.e2e.server import ROOT

http = urllib3.PoolManager(retries=False, timeout=30)


def post(tollgate, body: bytes, path: str = "/v1/chat/completions", **headers) -> urllib3.BaseHTTPResponse:
    return http.request(
        "POST",
        tollgate.url + path,
        body=body,
        headers={"Authorization": f"Bearer {tollgate.key}", "Content-Type": "application/json", **headers},
    )


def assert_healthy(tollgate) -> None:
    r = post(tollgate, json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}).encode())
    assert r.status == 200, r.data


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b'{"model": "mistral-small-latest", "messages": [', 400, None),
        (b"[1, 2, 3]", 400, None),
        (b"", 400, None),
        (b'{"model": "mistral-small-latest"}', 400, "messages"),
        (b'{"model": "mistral-small-latest", "messages": "hello"}', 400, "messages"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "Hi"}]}', 400, "model"),
        (
            b'{"model": "mistral-small-latest", "messages": [{"role": "user", "content": "Hi"}], "stream": "yes"}',
            400,
            "stream",
        ),
        (b'{"model": "mistral-small-latest", "messages": [{"content": "Hi"}]}', 400, "messages[0].role"),
        (b'{"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}', 404, "model"),
    ],
)
def test_bad_bodies_get_a_clear_error(tollgate, fake_mistral, body, status, param):
    r = post(tollgate, body)

    assert r.status == status
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert not fake_mistral.requests  # refused before any upstream call
    assert_healthy(tollgate)


def test_a_20_mb_body_is_refused_with_413(tollgate, fake_mistral):
    huge = json.dumps(
        {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "x" * (20 * 1024 * 1024)}]}
    ).encode()

    r = post(tollgate, huge)

    assert r.status == 413
    assert r.json()["error"]["code"] == "request_too_large"
    assert not fake_mistral.requests
    assert_healthy(tollgate)


def test_unknown_route_and_wrong_method_answer_in_the_envelope(tollgate):
    r = http.request("GET", tollgate.url + "/v1/nothing-here")
    assert r.status == 404 and r.json()["error"]["code"] == "unknown_url"
    r = http.request("GET", tollgate.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {tollgate.key}"})
    assert r.status == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_key_is_accepted_from_each_header(tollgate):
    body = json.dumps({"model": "mock-model", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    for header in ("api-key", "x-api-key"):
        r = http.request(
            "POST",
            tollgate.url + "/v1/chat/completions",
            body=body,
            headers={header: tollgate.key, "Content-Type": "application/json"},
        )
        assert r.status == 200, header


def test_runproxy_with_a_bad_config_exits_non_zero_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: small\n    litellm_params:\n      rpm: fast\n")

    done = subprocess.run(
        [sys.executable, "manage.py", "runproxy", "--config", str(bad), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "DJANGO_SECRET_KEY": "test",
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
        },
    )

    assert done.returncode != 0
    assert 'bad.yaml: model_list[0] (model_name "small"): litellm_params.model is required' in done.stderr

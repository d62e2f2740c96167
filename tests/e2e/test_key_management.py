"""/key/* through a real gunicorn: changes reach every worker, and no key reaches the logs."""

import time

import urllib3

from tests.e2e.server import Tollgate

HI = [{"role": "user", "content": "Hi"}]


def call(tollgate: Tollgate, method: str, path: str, key: str, body: dict | None = None) -> urllib3.BaseHTTPResponse:
    return urllib3.request(
        method, f"{tollgate.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def chat_status(tollgate: Tollgate, key: str) -> int:
    return call(tollgate, "POST", "/v1/chat/completions", key, {"model": "mock-model", "messages": HI}).status


def eventually(tollgate: Tollgate, key: str, status: int, within: float = 5.0) -> bool:
    """Every worker polls the tenants generation every 0.5 s: a change is seen within about that."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(chat_status(tollgate, key) == status for _ in range(4)):  # more calls than workers
            return True
        time.sleep(0.2)
    return False


def test_a_key_is_made_blocked_regenerated_and_deleted_across_workers(tollgate: Tollgate):
    made = call(tollgate, "POST", "/key/generate", tollgate.key, {"models": ["mock-model"]}).json()
    secret = made["key"]
    assert eventually(tollgate, secret, 200)

    assert call(tollgate, "POST", "/key/block", tollgate.key, {"key": secret}).status == 200
    assert eventually(tollgate, secret, 401)
    call(tollgate, "POST", "/key/unblock", tollgate.key, {"key": made["token"]})
    assert eventually(tollgate, secret, 200)

    regenerated = call(tollgate, "POST", f"/key/{secret}/regenerate", tollgate.key, {})
    assert regenerated.status == 200
    new_secret = regenerated.json()["key"]
    assert eventually(tollgate, secret, 401)
    assert eventually(tollgate, new_secret, 200)

    info = call(tollgate, "GET", f"/key/info?key={new_secret}", tollgate.key)
    assert info.status == 200 and new_secret not in info.data.decode()
    call(tollgate, "POST", f"/key/{'sk-never-issued-0123456789'}/regenerate", tollgate.key, {})  # 404, logged
    refused = call(tollgate, "POST", "/key/sk-path-of-a-refused-call-0123/regenerate", "sk-wrong-0000000000000", {})
    assert refused.status == 401  # refused before any view runs: the access log still hides the key

    assert call(tollgate, "POST", "/key/delete", tollgate.key, {"keys": [new_secret]}).status == 200
    assert eventually(tollgate, new_secret, 401)

    log = tollgate.log_text()
    assert "/key/info" in log and "regenerate" in log  # the access log is there...
    for key in (
        secret,
        new_secret,
        "sk-never-issued-0123456789",
        "sk-path-of-a-refused-call-0123",
        "sk-wrong-0000000000000",
    ):
        assert key not in log  # ...and names keys by their hint only

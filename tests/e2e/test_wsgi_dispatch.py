"""Browser pages keep the full middleware (sessions, CSRF, security headers); the API skips it."""

import urllib3

http = urllib3.PoolManager(retries=False, timeout=10)


def test_admin_pages_get_browser_protections(tollgate):
    r = http.request("GET", tollgate.url + "/admin/login/")

    assert r.status == 200
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "csrftoken" in r.headers.get("Set-Cookie", "")


def test_admin_login_form_refuses_a_post_without_csrf_token(tollgate):
    r = http.request(
        "POST", tollgate.url + "/admin/login/", fields={"username": "admin", "password": "x"}, encode_multipart=False
    )
    assert r.status == 403


def test_api_answers_set_no_cookie_and_carry_a_request_id(tollgate):
    r = http.request("GET", tollgate.url + "/v1/models", headers={"Authorization": f"Bearer {tollgate.key}"})

    assert r.status == 200
    assert "Set-Cookie" not in r.headers
    assert len(r.headers["x-request-id"]) == 32

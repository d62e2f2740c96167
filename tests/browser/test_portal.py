"""A team member in the portal, in a real browser: set a first password from the emailed link,
sign in, create a key (shown once), use it, block and delete it, and find that another team's
pages do not exist for them."""

import re
import time

import urllib3

from tests.browser.conftest import screenshot
from tests.e2e.server import Tollgate

PASSWORD = "correct-horse-battery-staple"


def manage(tollgate: Tollgate, path: str, body: dict) -> dict:
    r = urllib3.request(
        "POST", f"{tollgate.url}{path}", json=body, headers={"Authorization": f"Bearer {tollgate.key}"}, timeout=10
    )
    assert r.status == 200, (path, r.data)
    return r.json()


def chat_status(tollgate: Tollgate, key: str) -> int:
    body = {"model": "from-config", "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return urllib3.request("POST", f"{tollgate.url}/v1/chat/completions", json=body, headers=headers, timeout=10).status


def eventually_status(tollgate: Tollgate, key: str, status: int, within: float = 5.0) -> int:
    """Workers drop cached keys within TOLLGATE_AUTH_CACHE_SECONDS (0.5 s): poll past that."""
    deadline = time.monotonic() + within
    while (found := chat_status(tollgate, key)) != status and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def reset_link(tollgate: Tollgate, email: str, within: float = 5.0) -> str:
    """The link of the password-reset email, which the console mail backend printed to the log."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = tollgate.log_text()
        if f"To: {email}" in text:
            return re.findall(r"http://\S+/portal/password-reset/\S+/\S+/", text)[-1]
        time.sleep(0.1)
    raise AssertionError(f"no reset email to {email} in the log")


def test_a_member_sets_a_password_manages_a_key_and_cannot_reach_another_team(
    page, tollgate: Tollgate, console_errors: list[str]
):
    from playwright.sync_api import expect  # here, so that the module imports without playwright

    manage(tollgate, "/team/new", {"team_id": "team-portal", "team_alias": "Portal team", "max_budget": 20})
    manage(tollgate, "/team/new", {"team_id": "team-other", "team_alias": "Other team"})
    manage(tollgate, "/user/new", {"user_id": "pat", "user_email": "pat@example.com"})
    manage(tollgate, "/team/member_add", {"team_id": "team-portal", "member": {"role": "admin", "user_id": "pat"}})

    # A first password, through the reset flow and the emailed link.
    page.goto("/portal/login/")
    screenshot(page, "portal-login")
    page.get_by_role("link", name=re.compile("Forgot your password")).click()
    page.fill("#id_email", "pat@example.com")
    page.get_by_role("button", name="Send the link").click()
    page.wait_for_url("**/portal/password-reset/sent/")
    page.goto(reset_link(tollgate, "pat@example.com"))
    page.fill("#id_new_password1", PASSWORD)
    page.fill("#id_new_password2", PASSWORD)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url("**/portal/password-reset/done/")

    page.goto("/portal/login/")
    page.fill("#id_username", "pat@example.com")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/")
    assert page.get_by_text("Other team").count() == 0
    screenshot(page, "portal-home")

    page.get_by_role("link", name=re.compile("Portal team")).click()
    page.wait_for_url("**/portal/teams/team-portal/")
    page.fill("#id_key_alias", "pat-laptop")
    page.fill("#id_max_budget", "5")
    page.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_test_id("secret")
    secret = secret_box.input_value()
    assert secret.startswith("sk-")
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    hint = f"sk-...{secret[-4:]}"
    screenshot(page, "portal-key-created", mask=[secret_box])

    assert chat_status(tollgate, secret) == 200

    page.goto("/portal/teams/team-portal/")  # shown once: from now on only its hint
    assert secret not in page.content()
    row = page.locator(f"tr[data-key='{hint}']")
    expect(row.get_by_text("active", exact=True)).to_be_visible()

    row.get_by_role("button", name="Block").click()
    expect(row.get_by_text("blocked", exact=True)).to_be_visible()
    assert eventually_status(tollgate, secret, 401) == 401
    screenshot(page, "portal-team")

    row.get_by_role("button", name="Delete").click()  # the confirmation is accepted
    expect(page.locator(f"tr[data-key='{hint}']")).to_have_count(0)

    page.get_by_role("link", name="Members").click()
    expect(page.get_by_test_id("members").get_by_role("cell", name="pat@example.com (you)")).to_be_visible()
    screenshot(page, "portal-members")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_test_id("usage-table").get_by_role("cell", name="from-config").first).to_be_visible()
    screenshot(page, "portal-usage")

    assert console_errors == []
    for path in ("/portal/teams/team-other/", "/portal/teams/team-other/usage/", "/portal/teams/team-other/members/"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        assert "Other team" not in page.content()
    screenshot(page, "portal-other-team-404")
    assert all("404" in error for error in console_errors)
    console_errors.clear()  # those 404s were the point

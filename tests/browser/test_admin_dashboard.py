"""An operator's first hour, in a real browser: sign in to the admin, add a deployment, make a
team and a key, call the API with the key, and find the call in the dashboard."""

import re
import time

import urllib3

from tests.browser.conftest import MASTER_KEY, screenshot
from tests.e2e.server import Tollgate


def sign_in_to_admin(page) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", MASTER_KEY)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def chat(tollgate: Tollgate, key: str, model: str) -> urllib3.BaseHTTPResponse:
    body = {"model": model, "messages": [{"role": "user", "content": "Hello from the browser test"}]}
    return urllib3.request(
        "POST", f"{tollgate.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_admin_adds_a_deployment_team_and_key_and_sees_the_call_in_the_dashboard(page, tollgate: Tollgate):
    sign_in_to_admin(page)

    page.goto("/admin/proxy/deployment/add/")
    page.fill("#id_model_name", "browser-chat")
    page.fill("#id_litellm_model", "mistral/mistral-small-latest")
    page.fill("#id_mock_response", "Hello from a mock deployment.")
    page.fill("#id_input_cost_per_token", "0.001")  # so that the call costs something to chart
    page.fill("#id_output_cost_per_token", "0.002")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/proxy/deployment/")
    assert page.locator("#result_list").get_by_role("link", name="browser-chat").count() == 1

    page.goto("/admin/tenants/team/add/")
    page.fill("#id_team_id", "team-browser")
    page.fill("#id_team_alias", "Browser team")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/tenants/team/")

    # "Add virtual key" generates one and shows it once, in a copyable box.
    page.goto("/admin/tenants/virtualkey/add/")
    page.select_option("#id_team", label="Browser team")
    page.fill("#id_key_alias", "browser-key")
    page.locator("#content-main form [type=submit]").first.click()
    secret_box = page.locator(".tg-secret input")
    secret = secret_box.input_value()
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{40,}", secret)
    screenshot(page, "admin-key-generated", mask=[secret_box])

    answer = chat(tollgate, secret, "browser-chat")
    assert answer.status == 200, answer.data
    assert answer.json()["choices"][0]["message"]["content"] == "Hello from a mock deployment."

    # The last 24 hours are read from the ledger: the call is there at once.
    page.goto("/dashboard/?range=24h")
    table = page.get_by_test_id("usage-table")
    assert table.get_by_role("cell", name="browser-chat").count() == 1
    assert table.get_by_role("link", name="Browser team").count() == 1
    assert page.get_by_test_id("total-requests").inner_text() == "1"
    tooltips = page.locator("[data-testid=requests-chart] circle title").all_text_contents()
    assert any(t.endswith("Requests: 1") for t in tooltips), tooltips
    spend = page.locator("[data-testid=spend-chart] circle title").all_text_contents()
    assert any(not t.endswith("Spend: $0") for t in spend), spend
    screenshot(page, "dashboard-overview-24h")

    # Longer ranges read the daily table, which the rollup fills within a fraction of a second.
    deadline = time.monotonic() + 10
    while True:
        page.goto("/dashboard/?range=7d")
        if page.get_by_test_id("total-requests").inner_text() == "1" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert page.get_by_test_id("total-requests").inner_text() == "1"
    assert page.locator("figure", has_text="By model").get_by_role("cell", name="browser-chat").count() == 1

    # A budget nearly used shows up with its burn rate and the day it runs out.
    update = urllib3.request(
        "POST",
        f"{tollgate.url}/team/update",
        json={"team_id": "team-browser", "max_budget": 0.025},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=10,
    )
    assert update.status == 200, update.data
    page.reload()
    budgets = page.get_by_test_id("budgets")
    assert budgets.get_by_role("link", name="Browser team").count() == 1
    assert "92.0%" in budgets.inner_text()
    screenshot(page, "dashboard-overview-7d")

    page.get_by_test_id("usage-table").get_by_role("link", name="Browser team").click()
    page.wait_for_url("**/dashboard/teams/team-browser/**")
    assert page.get_by_role("heading", name="Team Browser team").is_visible()
    screenshot(page, "dashboard-team")

    page.get_by_role("link", name="browser-key").first.click()
    page.wait_for_url("**/dashboard/keys/**")
    assert page.get_by_test_id("usage-table").get_by_role("cell", name="browser-chat").count() == 1
    assert secret not in page.content()  # only its hint, sk-...abcd
    screenshot(page, "dashboard-key")

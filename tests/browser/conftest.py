"""Browser tests: Playwright for Python driving Debian's chromium against a real Tollgate.

Playwright's own browser downloads (`playwright install`) are not used: the tests launch the
system's /usr/bin/chromium (`apt-get install chromium`). Without it — or without the playwright
package — every test here is skipped, and the end of the run says so in one line, so a green
`make test` never hides that the browser was not exercised.

Screenshots of the main pages are saved to tests/browser/artifacts/ (gitignored).
"""

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import Tollgate, running

CHROMIUM = Path(os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium"))  # another path: to try the skip
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MASTER_KEY = "sk-browser-master-key-abcdefghijklmnopqrstuvwxyz"  # also the admin's password (runproxy)
MOCK_CONFIG = """\
model_list:
  - model_name: from-config
    litellm_params:
      model: mistral/mistral-small-latest
      mock_response: "Configured answer."

general_settings:
  master_key: {key}
"""


def why_skipped() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return None


SKIP_REASON = why_skipped()
_skipped: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.e2e)
        item.add_marker(pytest.mark.browser)
        if SKIP_REASON:
            item.add_marker(pytest.mark.skip(reason=f"browser test skipped: {SKIP_REASON}"))
            _skipped.append(item.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    if _skipped:
        terminalreporter.write_line(
            f"BROWSER TESTS SKIPPED ({len(_skipped)}): {SKIP_REASON}. "
            "The dashboard and portal were not exercised in a browser:",
            yellow=True,
            bold=True,
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  skipped {nodeid}", yellow=True)
    elif ARTIFACTS.exists() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"Browser screenshots: {ARTIFACTS}")


@pytest.fixture(scope="session")
def tollgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tollgate]:
    """A real Tollgate (gunicorn, 2 workers) with an admin login `admin` / MASTER_KEY."""
    tmp = tmp_path_factory.mktemp("browser")
    config = tmp / "config.yaml"
    config.write_text(MOCK_CONFIG.format(key=MASTER_KEY))
    with running(config, key=MASTER_KEY, tmp=tmp) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """The page's console errors; a test that provokes one on purpose (a 404) clears it."""
    return []


@pytest.fixture
def page(chromium, tollgate: Tollgate, console_errors: list[str]) -> Iterator:
    """A fresh browser context (no cookies) at laptop size; its console errors fail the test."""
    context = chromium.new_context(
        base_url=tollgate.url,
        viewport={"width": 1366, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],  # the key boxes' Copy buttons
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = console_errors
    page.on("console", lambda message: _console_error(message, errors))
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this key?" confirmations
    yield page
    context.close()
    assert not errors, f"browser console errors: {errors}"


def _console_error(message, errors: list[str]) -> None:
    """Record the page's errors; a missing /favicon.ico (the admin's pages ask for one) is not one."""
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        errors.append(f"{message.text} ({message.location.get('url')})")


def screenshot(page, name: str, **options) -> Path:
    """Save a full-page screenshot as a test artifact and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, **options)
    return path


@pytest.fixture(scope="session", autouse=True)
def fresh_artifacts() -> None:
    if SKIP_REASON is None and ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)

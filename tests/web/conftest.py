"""Browser tests of the website widget: the real assistant, its web server and headless Chromium.

Debian's Chromium (``/usr/bin/chromium``, installed by ``make``) is driven by Playwright through
its executable path; no browser is downloaded. Screenshots: ``results/browser/widget-*.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from clinic.launcher import Stack
from clinic.settings import PROJECT_DIR
from tests.integration.conftest import free_port, model  # noqa: F401 - the model fixture

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT_DIR / "results" / "browser"


@pytest.fixture(scope="module")
def other_site_port() -> int:
    """The port of another site embedding the widget (its origin is in WEB_ALLOWED_ORIGINS)."""
    return free_port()


@pytest.fixture(scope="module")
def web_stack(model: str, tmp_path_factory: pytest.TempPathFactory, other_site_port: int) -> Iterator[Stack]:  # noqa: F811
    """Rasa, the action server and the widget's web server, on fresh databases."""
    var = tmp_path_factory.mktemp("web")
    env = {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": f"sqlite:///{var}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{var}/tracker.db",
        "STAFF_NOTIFIERS": "",
        "WEB_RASA_URL": "",
        "WEB_WIDGET_COLOR": "#0b5e55",
        "WEB_ALLOWED_ORIGINS": f"http://127.0.0.1:{other_site_port}",
    }
    from clinic.db import migrate

    migrate(env["CLINIC_DATABASE_URL"])
    running = Stack(model, free_port(), free_port(), env=env, quiet=True, web_port=free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make pytest` installs Debian's chromium (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser profile (empty localStorage) with a desktop window."""
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def shot(page: Page, name: str) -> None:
    """Saves a screenshot as a test artefact: results/browser/widget-<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"widget-{name}.png"))

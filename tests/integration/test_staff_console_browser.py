"""The staff console in headless Chromium, against the real assistant.

A web patient (socket.io, like the widget) asks a personal medical question; a staff member
signed in to the console sees the escalation arrive without reloading, opens it, watches a new
patient message appear live, replies (the patient's browser session receives it), and resolves;
the assistant then answers the patient's next FAQ again. Patient HTML stays inert.
Screenshots: results/browser/console-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from clinic.launcher import Stack
from clinic.settings import PROJECT_DIR
from tests.integration.conftest import free_port
from tests.integration.patient import SocketPatient

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT_DIR / "results" / "browser"
PASSWORD = "correct horse battery staple"
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def console_stack(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The assistant, its action server and the staff console, with one staff account."""
    var = tmp_path_factory.mktemp("console")
    env = {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": f"sqlite:///{var}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{var}/tracker.db",
        "STAFF_NOTIFIERS": "",
    }
    from clinic.db import migrate
    from clinic.staff.accounts import create_user

    migrate(env["CLINIC_DATABASE_URL"])
    create_user("dana", PASSWORD, display_name="Dana Ruiz", database_url=env["CLINIC_DATABASE_URL"])
    running = Stack(model, free_port(), free_port(), env=env, quiet=True, staff_port=free_port())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        yield context.new_page()
        browser.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


def test_staff_answer_an_escalated_patient_and_hand_the_conversation_back(console_stack: Stack, page: Page) -> None:
    console = f"http://localhost:{console_stack.staff_port}"
    page.goto(f"{console}/")
    expect(page).to_have_url(f"{console}/login?next=/")  # no page without signing in
    page.fill("#username", "dana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#inbox-empty")).to_be_visible()
    shot(page, "inbox-empty")

    patient = SocketPatient(console_stack.rasa_port)
    try:
        patient.say("i take lithium for bipolar, is ketamine safe for me?")
        assert "clinical team" in " ".join(patient.replies())

        # The escalation appears in the open inbox without a reload.
        row = page.locator("#inbox-rows tr[data-id]")
        expect(row).to_have_count(1, timeout=20_000)
        expect(row).to_contain_text("Medical question")
        shot(page, "inbox-new-escalation")

        row.locator("a.row-link").click()
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text("i take lithium for bipolar")

        # A new patient message appears live; its HTML is shown as text and never runs.
        patient.say(f"hello? {XSS}")
        held = patient.replies(wait=3)  # no answer while staff hold it, only the acknowledgement
        assert len(held) == 1 and "Your message is with our team" in held[0]
        expect(transcript).to_contain_text(XSS, timeout=20_000)
        assert page.evaluate("window.__xss") is None
        shot(page, "conversation")

        page.fill("#reply-text", "Hi, this is Dana, a nurse here. I'll call you in 5 minutes.")
        page.click("#reply button[type=submit]")
        assert patient.replies() == ["Hi, this is Dana, a nurse here. I'll call you in 5 minutes."]
        expect(page.locator("#reply-list")).to_contain_text("Delivered")
        shot(page, "replied")

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("text=Resolve and hand back")
        expect(page.locator("#fact-status-badge")).to_have_text("Resolved", timeout=20_000)
        assert "virtual assistant" in " ".join(patient.replies())
        shot(page, "resolved")

        patient.say("how much does an infusion cost?")
        assert any("$" in text for text in patient.replies())
    finally:
        patient.close()

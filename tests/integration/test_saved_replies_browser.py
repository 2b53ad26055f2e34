"""The inbox's previews and a saved reply, in headless Chromium against the real assistant.

A web patient (socket.io, like the widget) asks a personal medical question and writes again: the
open inbox shows the start of the latest message and how many wait, without a reload. Staff open
the conversation, insert the call-back offer (filled in with the clinic's name and phone), edit it,
and send it: the patient's session receives the edited text.
Screenshots: results/browser/saved-replies-*.png.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from clinic.launcher import Stack
from tests.integration.patient import SocketPatient
from tests.integration.test_staff_console_browser import PASSWORD, SHOTS

# the browser page, and the assistant with the staff console and one staff account (a copy per module)
from tests.integration.test_staff_console_browser import console_stack as console_stack  # noqa: F401
from tests.integration.test_staff_console_browser import page as page  # noqa: F401


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"saved-replies-{name}.png"), full_page=True)


def test_the_inbox_previews_and_a_saved_reply_reaches_the_patient(console_stack: Stack, page: Page) -> None:
    console = f"http://localhost:{console_stack.staff_port}"
    page.goto(f"{console}/login")
    page.fill("#username", "dana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#inbox-empty")).to_be_visible()

    patient = SocketPatient(console_stack.rasa_port)
    try:
        patient.say("i take lithium for bipolar, is ketamine safe for me?")
        assert "clinical team" in " ".join(patient.replies())
        row = page.locator("#inbox-rows tr[data-id]")
        expect(row.locator(".preview")).to_have_text("i take lithium for bipolar, is ketamine safe for me?",
                                                     timeout=20_000)
        expect(row.locator(".since-reply")).to_contain_text("1 message with no staff reply yet")

        patient.say("hello? <b>is anyone there</b>")
        patient.replies(wait=3)
        expect(row.locator(".preview")).to_have_text("hello? <b>is anyone there</b>", timeout=20_000)
        expect(row.locator(".since-reply")).to_contain_text("2 messages with no staff reply yet")
        shot(page, "inbox-preview")

        row.locator("a.row-link").click()
        expect(page.locator("#saved-replies")).to_be_visible()
        page.select_option("#saved-reply", label="Call-back offer")
        page.click("#saved-reply-insert")
        box = page.locator("#reply-text")
        expect(box).to_have_value(
            "Hi there, this is the team at Sample Ketamine Clinic. We would be glad to talk this through by "
            "phone. Call us at (555) 010-4200 (Monday to Thursday 8 AM to 6 PM, Friday 8 AM to 4 PM, Saturday "
            "9 AM to 1 PM, closed Sunday), or reply with a good time and the best number to reach you, and we "
            "will call you back."
        )
        box.press("End")
        box.type(" Dana, nurse")
        shot(page, "inserted")

        page.click("#reply button[type=submit]")
        received = patient.replies()
        assert len(received) == 1
        assert received[0].startswith("Hi there, this is the team at Sample Ketamine Clinic.")
        assert received[0].endswith("we will call you back. Dana, nurse")
        expect(page.locator("#reply-list")).to_contain_text("Delivered")
        shot(page, "sent")
    finally:
        patient.close()

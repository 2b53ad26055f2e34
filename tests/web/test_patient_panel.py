"""The conversation page's patient panel in headless Chromium: the console alone (no Rasa), on a thread.

An SMS patient who booked on the website (same phone number) is escalated; staff see the upcoming
booking on the conversation page, follow its link to the bookings page, and add a note on the
patient that their next escalation shows. Screenshot: results/browser/console-patient-context.png.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import uvicorn
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from clinic.booking.scheduling.records import free_code
from clinic.clock import utcnow
from clinic.db import Booking, migrate, session_scope
from clinic.settings import PROJECT_DIR
from clinic.staff.accounts import create_user
from clinic.staff.console.app import create_app
from clinic.staff.escalation import escalate
from tests.integration.conftest import free_port

PASSWORD = "correct horse battery staple"
PHONE = "+13125550142"
SHOTS = PROJECT_DIR / "results" / "browser"


@dataclass
class Console:
    url: str
    database_url: str


@pytest.fixture
def console(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The console on localhost (Chromium keeps Secure cookies there), with one staff account."""
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    migrate(database_url)
    monkeypatch.setenv("TRACKER_STORE_URL", f"sqlite:///{tmp_path / 'tracker.db'}")  # none: the page says so
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    create_user("sam", PASSWORD, display_name="Sam Staff", database_url=database_url, hasher=hasher)
    port = free_port()
    app = create_app(database_url, password_hasher=hasher)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none",
                                           proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Console(f"http://localhost:{port}", database_url)
    server.should_exit = True
    thread.join(timeout=10)


def _book(database_url: str, days: int) -> int:
    start = (utcnow() + timedelta(days=days)).replace(hour=16, minute=0, second=0, microsecond=0)
    with session_scope(database_url) as session:
        row = Booking(code=free_code(session), conversation_id="web-visit-1", channel="socketio", backend="builtin",
                      full_name="Ana María López", phone=PHONE, email=None, visit_reason="depression",
                      patient_type="new", sms_consent=True, starts_at=start, ends_at=start + timedelta(minutes=30),
                      chair=1, status="booked")
        session.add(row)
        session.flush()
        return row.id


def test_the_conversation_page_lists_the_patient_s_booking(console: Console, page: Page) -> None:
    booking_id = _book(console.database_url, days=4)
    escalation_id = escalate(conversation_id=PHONE, channel="twilio", reason="medical_question", message_id="m1",
                             text="is ketamine ok with my lithium?", guard_reason=None, language="en",
                             database_url=console.database_url).escalation_id

    page.goto(f"{console.url}/login?next=/escalations/{escalation_id}")
    page.fill("#username", "sam")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")

    upcoming = page.locator("#patient-upcoming li")
    expect(upcoming).to_have_count(1)
    expect(upcoming).to_contain_text("Ana María López")
    expect(page.locator("#patient-matched")).to_contain_text(PHONE)
    page.fill("#patient-note-text", "Prefers a call after 5 PM; son translates.")
    page.click("#patient-notes button[type=submit]")
    expect(page.locator("#patient-note-list")).to_contain_text("Prefers a call after 5 PM")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#patient").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "console-patient-context.png"), full_page=True)

    upcoming.locator("a").click()
    expect(page).to_have_url(f"{console.url}/bookings#booking-{booking_id}")
    expect(page.locator(f"#booking-{booking_id}")).to_contain_text("Ana María López")

"""The staff console's own pages in headless Chromium: the console alone (no Rasa), on a thread.

What only a browser shows: the inbox's polling notices an idle session ran out and goes to the
sign-in page with the note, the next-page link leads past the first 200 escalations, and the
admin page asks for the password again. The project's clock is stopped (``clinic.clock.utcnow``)
and moved on by the tests, so nothing waits half an hour.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import uvicorn
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from clinic.clock import utcnow
from clinic.db import Escalation, migrate, session_scope
from clinic.staff.accounts import create_user
from clinic.staff.console.app import create_app
from tests.integration.conftest import free_port

PASSWORD = "correct horse battery staple"


@dataclass
class Console:
    url: str
    database_url: str
    now: datetime

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def console(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The console on localhost (Chromium keeps Secure cookies there), with two accounts."""
    database_url = f"sqlite:///{tmp_path / 'clinic.db'}"
    migrate(database_url)
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    create_user("sam", PASSWORD, display_name="Sam Staff", database_url=database_url, hasher=hasher)
    create_user("ada", PASSWORD, display_name="Ada Admin", is_admin=True, database_url=database_url, hasher=hasher)
    port = free_port()
    running = Console(f"http://localhost:{port}", database_url, utcnow())
    monkeypatch.setattr("clinic.clock.utcnow", lambda: running.now)
    app = create_app(database_url, password_hasher=hasher, idle_timeout=timedelta(minutes=30))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none",
                                           proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield running
    server.should_exit = True
    thread.join(timeout=10)


def _sign_in(page: Page, console: Console, username: str) -> None:
    page.goto(f"{console.url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Inbox")


def test_an_idle_inbox_goes_to_sign_in_with_a_note(console: Console, page: Page) -> None:
    _sign_in(page, console, "sam")

    console.advance(minutes=31)

    expect(page.locator("#login-note")).to_have_text(
        "You were signed out after 30 minutes without activity. Sign in to continue.", timeout=20_000,
    )
    assert re.search(r"/login\?next=%2F(%3F.*)?&ended=idle$", page.url)


def test_the_next_page_link_reaches_escalation_201(console: Console, page: Page) -> None:
    with session_scope(console.database_url) as session:
        start = utcnow() - timedelta(days=1)
        session.add_all(
            Escalation(conversation_id=f"conv-{n}", channel="socketio", reason="asked_for_staff", urgency="normal",
                       status="open", created_at=start + timedelta(minutes=n))
            for n in range(205)
        )
    _sign_in(page, console, "sam")
    expect(page.locator("#inbox-rows tr")).to_have_count(200)

    page.click("#inbox-next")

    expect(page.locator("#inbox-rows tr")).to_have_count(5)
    expect(page.locator("#inbox-rows tr").first).to_have_attribute("data-id", "201")
    expect(page.locator("#inbox-next")).to_be_hidden()


def test_the_audit_log_asks_for_the_password_again(console: Console, page: Page) -> None:
    _sign_in(page, console, "ada")
    console.advance(minutes=6)

    page.click("text=Audit log")
    expect(page.locator("h1")).to_have_text("Confirm your password")
    page.fill("#password", PASSWORD)
    page.click("form[action='/confirm-password'] button[type=submit]")

    expect(page.locator("h1")).to_have_text("Audit log")

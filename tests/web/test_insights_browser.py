"""The staff console's Insights page in headless Chromium, on generated conversations.

The console alone (no Rasa) on a thread, with 3,000 conversations over 30 days made by
tools/insights_data.py. Each chart is drawn (SVG, under the console's strict CSP) with its
numbers beside it, equal to the report's; an admin opens the list of what the assistant could
not answer (audited); a manager sees the numbers and is refused that list.
Screenshots: results/browser/insights-*.png.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import uvicorn
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from clinic.insights.period import make_period
from clinic.insights.report import build_report
from clinic.profile import load_profile
from clinic.staff import audit
from clinic.staff.accounts import create_user
from clinic.staff.console.app import create_app
from tests.integration.conftest import free_port
from tests.web.conftest import SHOTS
from tools.insights_data import generate

PASSWORD = "correct horse battery staple"
END = date(2026, 11, 30)
FIRST = END - timedelta(days=29)


@dataclass
class Console:
    url: str
    database_url: str
    tracker_url: str


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("insights")
    clinic_url, tracker_url = f"sqlite:///{folder / 'clinic.db'}", f"sqlite:///{folder / 'tracker.db'}"
    profile = load_profile()
    generate(tracker_url, clinic_url, conversations=3000, days=30, end=END, seed=11, profile=profile)
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    create_user("ada", PASSWORD, role="admin", database_url=clinic_url, hasher=hasher)
    create_user("max", PASSWORD, role="manager", database_url=clinic_url, hasher=hasher)
    port = free_port()
    app = create_app(clinic_url, password_hasher=hasher, profile=profile)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Console(f"http://localhost:{port}", clinic_url, tracker_url)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _tracker_store(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console reads conversations from ``TRACKER_STORE_URL`` (set per test, after the isolation fixture)."""
    monkeypatch.setenv("TRACKER_STORE_URL", console.tracker_url)


def _sign_in(page: Page, console: Console, username: str) -> None:
    page.goto(f"{console.url}/login?next=/insights")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Insights")


def _number(page: Page, table: str, label: str) -> str:
    return page.locator(f"#{table} tr", has=page.locator("th", has_text=label)).first.locator("td").inner_text()


def test_each_chart_is_drawn_with_its_numbers(console: Console, page: Page) -> None:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    _sign_in(page, console, "ada")
    page.goto(f"{console.url}/insights?from={FIRST}&to={END}")
    expected = build_report(make_period(FIRST, END, load_profile()), load_profile(),
                            database_url=console.database_url, tracker_url=console.tracker_url)
    for chart in ("conversations", "containment", "faq-topics", "booking-funnel", "escalations", "crisis"):
        expect(page.locator(f"#chart-{chart}")).to_be_visible()
        assert page.locator(f"#chart-{chart} rect.bar").count() > 0, chart
    conversations = expected["conversations"]
    assert conversations["total"] > 2000
    assert _number(page, "numbers-conversations", "Conversations") == str(conversations["total"])
    assert _number(page, "numbers-conversations", "SMS") == str(conversations["sms"])
    assert _number(page, "numbers-containment", "Containment rate") == f"{expected['containment_rate'] * 100:.0f}%"
    top = expected["faq_topics"][0]
    assert _number(page, "numbers-faq-topics", top["topic"]) == str(top["count"])
    assert _number(page, "numbers-booking-funnel", "Booked") == str(expected["booking_funnel"]["booked"])
    assert _number(page, "numbers-escalations", "Escalations") == str(expected["escalations"]["total"])
    assert _number(page, "numbers-crisis", "Crisis protocol started") == str(
        expected["crisis_events"]["crisis_protocol"])
    assert _number(page, "numbers-response", "Staff replies not delivered") == str(expected["replies_not_delivered"])
    # a bar's tooltip carries its day's number
    first_day = conversations["per_day"][0]
    bar = page.locator(f'#chart-conversations rect[data-date="{first_day["date"]}"]').first
    assert bar.get_attribute("data-value") == str(first_day["web"])
    assert not [e for e in errors if "Content Security Policy" in e], errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "insights-page.png"), full_page=True)

    page.click("#unanswered-link")
    expect(page.locator("h1")).to_have_text("What the assistant could not answer")
    expect(page.locator(".unanswered-group").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "insights-unanswered.png"), full_page=True)
    assert audit.list_events(console.database_url, action="insights_unanswered_view", username="ada")


def test_a_manager_sees_numbers_but_not_the_unanswered_list(console: Console, page: Page) -> None:
    _sign_in(page, console, "max")
    expect(page.locator("#chart-conversations")).to_be_visible()
    expect(page.locator("#unanswered-link")).to_have_count(0)
    expect(page.locator(".mainnav a", has_text="Inbox")).to_have_count(0)
    response = page.goto(f"{console.url}/insights/unanswered")
    assert response is not None and response.status == 403
    page.screenshot(path=str(SHOTS / "insights-manager-refused.png"), full_page=True)

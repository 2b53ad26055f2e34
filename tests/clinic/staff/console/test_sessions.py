"""Console sessions: the idle timeout, and the password asked again before admin pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.staff import audit
from clinic.staff.accounts import StaffMember
from clinic.staff.console.app import create_app
from tests.clinic.staff.console.conftest import PASSWORD, Browser, Clock, csrf_of


@pytest.fixture
def signed_in(app: Starlette, clock: Clock) -> Iterator[Browser]:
    """A browser of the clinic (not signed in yet), with the clock stopped."""
    with TestClient(app, base_url="https://testserver") as client:
        yield Browser(client)


def _note(html: str) -> str:
    match = re.search(r'id="login-note">([^<]*)<', html)
    return match.group(1) if match else ""


# ------------------------------------------------------------------ idle timeout


def test_an_idle_session_goes_to_sign_in_after_30_minutes_with_a_note(
    signed_in: Browser, staff_user: StaffMember, clock: Clock
) -> None:
    assert signed_in.login("sam", next_path="/?show=mine").status_code == 303
    clock.advance(minutes=20)
    assert signed_in.get("/", follow_redirects=False).status_code == 200  # activity keeps it open
    clock.advance(minutes=29)
    assert signed_in.get("/", follow_redirects=False).status_code == 200

    clock.advance(minutes=30)
    expired = signed_in.get("/?show=mine", follow_redirects=False)

    assert expired.status_code == 303
    assert expired.headers["location"] == "/login?next=/%3Fshow%3Dmine&ended=idle"
    page = signed_in.get(expired.headers["location"])
    assert _note(page.text) == "You were signed out after 30 minutes without activity. Sign in to continue."


def test_polling_does_not_keep_a_session_open_and_says_why_it_ended(
    signed_in: Browser, staff_user: StaffMember, clock: Clock
) -> None:
    signed_in.login("sam")
    for _ in range(5):
        clock.advance(minutes=5)
        assert signed_in.get("/inbox.json").status_code == 200
    clock.advance(minutes=5)

    polled = signed_in.get("/inbox.json")

    assert polled.status_code == 401 and polled.json()["ended"] == "idle"


def test_the_idle_timeout_comes_from_the_environment(
    db: str, hasher: object, fake: object, staff_user: StaffMember, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_IDLE_TIMEOUT_MINUTES", "10")
    with TestClient(create_app(db, password_hasher=hasher), base_url="https://testserver") as client:
        browser = Browser(client)
        browser.login("sam")
        clock.advance(minutes=10)

        page = browser.get("/")

    assert _note(page.text) == "You were signed out after 10 minutes without activity. Sign in to continue."


# ------------------------------------------------------------------ admin pages ask for the password again


def test_an_admin_page_asks_for_the_password_again_after_5_minutes(
    signed_in: Browser, admin_user: StaffMember, clock: Clock, db: str
) -> None:
    signed_in.login("ada")
    assert signed_in.get("/audit", follow_redirects=False).status_code == 200  # just signed in
    clock.advance(minutes=6)

    asked = signed_in.get("/audit?action=login", follow_redirects=False)

    assert asked.status_code == 303
    assert asked.headers["location"] == "/confirm-password?next=/audit%3Faction%3Dlogin"
    form = signed_in.get(asked.headers["location"])
    assert form.status_code == 200 and 'type="password"' in form.text
    wrong = signed_in.post("/confirm-password", {"password": "not my password", "next": "/audit?action=login"})
    assert wrong.status_code == 200 and "That is not your password" in wrong.text
    assert signed_in.get("/audit", follow_redirects=False).status_code == 303
    confirmed = signed_in.post("/confirm-password", {"password": PASSWORD, "next": "/audit?action=login"})
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/audit?action=login"
    assert signed_in.get("/audit", follow_redirects=False).status_code == 200
    clock.advance(minutes=5)
    assert signed_in.get("/audit", follow_redirects=False).status_code == 303
    actions = [e.action for e in audit.list_events(db) if e.action.startswith("reauth")]
    assert actions == ["reauth", "reauth_failed"]


def test_the_confirmation_form_needs_the_session_csrf_token(
    signed_in: Browser, admin_user: StaffMember, clock: Clock
) -> None:
    signed_in.login("ada")
    clock.advance(minutes=6)

    forged = signed_in.client.post("/confirm-password", data={"password": PASSWORD, "next": "/audit"},
                                   follow_redirects=False)

    assert forged.status_code == 403
    assert csrf_of(signed_in.get("/confirm-password?next=/audit").text) == signed_in.csrf


def test_wrong_confirmations_are_throttled_like_sign_ins(
    signed_in: Browser, admin_user: StaffMember, clock: Clock
) -> None:
    signed_in.login("ada")
    clock.advance(minutes=6)
    for _ in range(5):
        signed_in.post("/confirm-password", {"password": "not my password", "next": "/audit"})

    refused = signed_in.post("/confirm-password", {"password": PASSWORD, "next": "/audit"})

    assert refused.status_code == 429 and "retry-after" in refused.headers


def test_the_confirmation_only_returns_to_console_pages(
    signed_in: Browser, admin_user: StaffMember, clock: Clock
) -> None:
    signed_in.login("ada")
    clock.advance(minutes=6)

    confirmed = signed_in.post("/confirm-password", {"password": PASSWORD, "next": "//evil.example/"})

    assert confirmed.headers["location"] == "/"


def test_staff_still_cannot_open_the_audit_log(signed_in: Browser, staff_user: StaffMember) -> None:
    signed_in.login("sam")

    assert signed_in.get("/audit", follow_redirects=False).status_code == 403

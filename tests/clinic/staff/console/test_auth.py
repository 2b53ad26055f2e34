"""Signing in and out of the console: sessions, the sign-in form, audit of sign-ins (throttling and
lock-out: test_throttle.py)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.staff import audit
from clinic.staff.accounts import StaffMember, deactivate
from clinic.staff.console.app import create_app
from clinic.staff.console.auth import safe_next
from tests.clinic.staff.console.conftest import PASSWORD, Browser, csrf_of


def _set_cookies(response) -> dict[str, SimpleCookie]:
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name in parsed:
            cookies[name] = parsed
    return cookies


def _error_text(html: str) -> str:
    return re.search(r'id="login-error">([^<]*)<', html).group(1)


def test_an_anonymous_page_request_goes_to_the_sign_in_page(browser: Browser) -> None:
    response = browser.get("/escalations/3?notice=x", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/escalations/3%3Fnotice%3Dx"


def test_the_sign_in_page(browser: Browser) -> None:
    response = browser.get("/login")

    assert response.status_code == 200
    assert 'name="username"' in response.text and 'type="password"' in response.text
    login_cookie = _set_cookies(response)["console_login"]["console_login"]
    assert login_cookie["httponly"] and login_cookie["secure"] and login_cookie["samesite"].lower() == "strict"
    assert login_cookie.value == csrf_of(response.text)


def test_signing_in_sets_a_strict_secure_http_only_session_cookie(browser: Browser, staff_user: StaffMember,
                                                                  db: str) -> None:
    response = browser.login("sam", next_path="/?show=mine")

    assert response.status_code == 303 and response.headers["location"] == "/?show=mine"
    cookie = _set_cookies(response)["console_session"]["console_session"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/"
    assert browser.get("/").status_code == 200
    assert [(e.action, e.username) for e in audit.list_events(db)] == [("login", "sam")]


def test_cookies_are_not_secure_only_when_asked(db: str, hasher: PasswordHasher, staff_user: StaffMember,
                                                fake: object) -> None:
    plain = create_app(db, secure_cookies=False, password_hasher=hasher)
    with TestClient(plain, base_url="http://console.lan") as client:
        response = Browser(client).login("sam")

        cookie = _set_cookies(response)["console_session"]["console_session"]
        assert not cookie["secure"] and cookie["httponly"]
        assert client.get("/").status_code == 200


def test_a_wrong_password_and_an_unknown_user_look_the_same(browser: Browser, staff_user: StaffMember,
                                                            db: str) -> None:
    wrong = browser.login("sam", "not the password")
    unknown = browser.login("nobody", "not the password")

    assert wrong.status_code == unknown.status_code == 200
    assert _error_text(wrong.text) == _error_text(unknown.text)
    assert "console_session" not in wrong.cookies and "console_session" not in unknown.cookies
    events = audit.list_events(db)
    assert [(e.action, e.username) for e in reversed(events)] == [("login_failed", "sam"), ("login_failed", None)]
    assert "not the password" not in str(events) and "nobody" not in str(events)


def test_sign_out_ends_the_server_side_session(staff_browser: Browser, db: str) -> None:
    old_cookie = staff_browser.client.cookies.get("console_session")

    response = staff_browser.post("/logout")

    assert response.status_code == 303 and response.headers["location"] == "/login"
    staff_browser.client.cookies.set("console_session", old_cookie)
    assert staff_browser.get("/", follow_redirects=False).status_code == 303
    assert staff_browser.get("/inbox.json").status_code == 401
    assert [e.action for e in audit.list_events(db)][:2] == ["logout", "login"]


def test_a_disabled_account_is_signed_out(staff_browser: Browser, db: str) -> None:
    deactivate("sam", database_url=db)

    assert staff_browser.get("/", follow_redirects=False).status_code == 303


def test_a_forged_session_cookie_is_refused_and_cleared(browser: Browser) -> None:
    browser.client.cookies.set("console_session", "forged")

    response = browser.get("/", follow_redirects=False)

    assert response.status_code == 303
    assert 'console_session=""' in response.headers["set-cookie"]


def test_the_sign_in_form_needs_its_token(browser: Browser, staff_user: StaffMember) -> None:
    browser.get("/login")
    data = {"username": "sam", "password": PASSWORD}

    missing = browser.client.post("/login", data=data, follow_redirects=False)
    wrong = browser.client.post("/login", data={**data, "csrf_token": "guess"}, follow_redirects=False)
    browser.client.cookies.clear()
    no_cookie = browser.client.post("/login", data={**data, "csrf_token": "guess"}, follow_redirects=False)

    assert missing.status_code == wrong.status_code == no_cookie.status_code == 403
    assert "console_session" not in missing.cookies


def test_a_signed_in_user_skips_the_sign_in_page(staff_browser: Browser) -> None:
    response = staff_browser.get("/login?next=/audit", follow_redirects=False)

    assert response.status_code == 303 and response.headers["location"] == "/audit"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/escalations/4", "/escalations/4"),
        ("/?show=mine", "/?show=mine"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/login", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_are_followed_after_sign_in(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_an_open_redirect_is_not_followed(browser: Browser, staff_user: StaffMember) -> None:
    response = browser.login("sam", next_path="//evil.example/")

    assert response.headers["location"] == "/"


def test_the_app_builds_without_arguments(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.setenv("CLINIC_DATABASE_URL", sqlite_url)

    app = create_app()

    assert isinstance(app, Starlette) and app.state.console.database_url == sqlite_url
    assert app.state.console.secure_cookies and app.state.console.password_hasher is None

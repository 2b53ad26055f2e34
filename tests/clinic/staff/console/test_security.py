"""Security of the console: every route needs sign-in, CSRF on every form post, inert patient
text, admin-only audit log, security headers, cookie flags, body limits, no patient text in logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from clinic.booking import service as booking
from clinic.staff import audit, inbox
from clinic.staff.accounts import StaffMember, create_api_token, revoke_api_token
from clinic.staff.notifications import NotificationStatus
from tests.clinic.booking.scheduling.helpers import at
from tests.clinic.staff.console import FakeRasa
from tests.clinic.staff.console.conftest import Browser

XSS = '<script>alert("x")</script><img src=x onerror="alert(1)">'
PUBLIC = {("GET", "/login")}
BOOKING_POSTS = {"/bookings/1/cancel", "/booking-requests/1/confirm", "/booking-requests/1/cancel"}


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, concrete path) of every route, with path parameters set to 1."""
    for route in routes:
        if isinstance(route, Mount):
            if route.path == "/static":
                continue
            yield from _routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "1", prefix + route.path)
            for method in sorted(route.methods - {"HEAD"}):
                yield method, path
        else:  # pragma: no cover - a new kind of route must be added to this test
            raise AssertionError(f"unexpected route type {route!r}")


def _session_posts(app: Starlette) -> list[str]:
    return [path for method, path in _routes(app.routes)
            if method == "POST" and not path.startswith("/api/") and path != "/login"]


@pytest.fixture
def bookings(make_booking: Callable[..., int], make_request: Callable[..., int]) -> None:
    """Booking 1 and booking request 1, so that the routes' ``/1/`` paths address real rows."""
    assert make_booking(at(2031, 3, 3, 10)) == 1
    assert make_request(at(2031, 3, 4, 14)) == 1


def _bookings_untouched(database_url: str) -> None:
    assert [b.status for b in booking.list_bookings(status=None, database_url=database_url)] == ["booked"]
    assert [r.status for r in booking.list_requests(status=None, database_url=database_url)] == ["requested"]
    assert not [e for e in audit.list_events(database_url) if e.action.startswith("booking")]


# ------------------------------------------------------------------ sign-in required everywhere


def test_every_route_refuses_an_anonymous_request(
    app: Starlette, open_escalation: Callable[..., int], fake: FakeRasa, browser: Browser, bookings: None
) -> None:
    open_escalation("conv-1")
    routes = list(_routes(app.routes))
    assert len(routes) >= 29 and ("POST", "/escalations/1/reply") in routes
    assert {("GET", "/bookings"), ("GET", "/api/bookings"), ("POST", "/api/bookings/1/cancel")} <= set(routes)
    assert {("POST", path) for path in BOOKING_POSTS} <= set(routes)

    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        response = browser.client.request(method, path, data={"text": "hi"}, follow_redirects=False)
        if path.startswith("/api/") or path.endswith(".json"):
            assert response.status_code == 401, (method, path)
            assert "error" in response.json()
        elif path == "/login":
            assert response.status_code == 403, (method, path)
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login"), (method, path)
    assert fake.sent == [] and fake.handed_back == []
    assert inbox.get_escalation(1, database_url=app.state.console.database_url).summary.status == "open"
    _bookings_untouched(app.state.console.database_url)


def test_only_the_sign_in_page_and_static_files_are_public(browser: Browser) -> None:
    assert browser.get("/login").status_code == 200
    assert browser.get("/static/console.js").status_code == 200


@pytest.mark.parametrize("path", ["/static/../views.py", "/static/%2e%2e/views.py", "/static/..%2fviews.py"])
def test_no_path_leads_out_of_the_static_files(browser: Browser, path: str) -> None:
    assert browser.get(path, follow_redirects=False).status_code in (303, 404)


# ------------------------------------------------------------------ CSRF


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_every_form_post_without_the_right_csrf_token_is_refused(
    app: Starlette, staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa, token: str | None,
    bookings: None,
) -> None:
    open_escalation("conv-1")
    posts = _session_posts(app)
    assert "/logout" in posts and "/escalations/1/resolve" in posts and set(posts) >= BOOKING_POSTS

    for path in posts:
        data = {"text": "hello", "take_over": "1", "start": "2031-03-04T15:00"}
        if token is not None:
            data["csrf_token"] = token
        response = staff_browser.client.post(path, data=data, follow_redirects=False)
        assert response.status_code == 403, path
        assert "expired" in response.text
    summary = inbox.get_escalation(1, database_url=app.state.console.database_url).summary
    assert (summary.status, summary.assigned_to) == ("open", None)
    assert fake.sent == [] and fake.handed_back == []
    _bookings_untouched(app.state.console.database_url)
    assert staff_browser.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_a_csrf_token_from_another_session_is_refused(
    app: Starlette, staff_browser: Browser, admin_browser: Browser, open_escalation: Callable[..., int]
) -> None:
    open_escalation("conv-1")

    response = staff_browser.client.post("/escalations/1/claim", data={"csrf_token": admin_browser.csrf},
                                         follow_redirects=False)

    assert response.status_code == 403


def test_the_csrf_token_may_come_in_a_header(staff_browser: Browser, open_escalation: Callable[..., int]) -> None:
    open_escalation("conv-1")

    with_header = staff_browser.client.post("/escalations/1/claim", headers={"X-CSRF-Token": staff_browser.csrf},
                                            follow_redirects=False)
    json_without = staff_browser.client.post("/escalations/1/unassign", json={"csrf_token": staff_browser.csrf},
                                             follow_redirects=False)
    multipart = staff_browser.client.post("/escalations/1/unassign", files={"csrf_token": ("a", b"x")},
                                          follow_redirects=False)

    assert with_header.status_code == 303 and with_header.headers["location"].endswith("notice=claimed")
    assert json_without.status_code == multipart.status_code == 403


# ------------------------------------------------------------------ XSS


def test_patient_and_staff_text_is_inert(
    make_user: Callable[..., StaffMember], app: Starlette, open_escalation: Callable[..., int], fake: FakeRasa
) -> None:
    make_user("eve", name=XSS, admin=True)
    escalation_id = open_escalation(XSS, "crisis", text=XSS, rule=XSS, channel=XSS)
    fake.say(XSS, "patient", XSS)
    fake.failing.append(NotificationStatus(escalation_id, XSS, XSS, "failed", 2, XSS, None, None))
    fake.by_escalation[escalation_id] = list(fake.failing)
    with TestClient(app, base_url="https://testserver") as client:
        eve = Browser(client)
        eve.login("eve")
        eve.post(f"/escalations/{escalation_id}/notes", {"text": XSS})
        eve.post(f"/escalations/{escalation_id}/reply", {"text": XSS})
        fake.reply_error = XSS
        eve.post(f"/escalations/{escalation_id}/reply", {"text": XSS})
        bad_reply = eve.post(f"/escalations/{escalation_id}/reply", {"text": XSS + "x" * 2000})
        pages = [eve.get(path).text for path in ("/", f"/escalations/{escalation_id}", "/audit", "/?show=mine")]
        fake.transcript_error = OSError(XSS)
        pages.append(eve.get(f"/escalations/{escalation_id}").text)
        pages.append(bad_reply.text)

    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html and 'onerror="' not in html
    assert all("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html for html in pages[1:2])
    assert pages[1].count("&lt;script&gt;") >= 6  # transcript, reply x2, error, note, conversation id, ...


def test_patient_details_on_the_bookings_page_are_inert(
    app: Starlette, make_user: Callable[..., StaffMember], make_booking: Callable[..., int],
    make_request: Callable[..., int],
) -> None:
    make_user("eve", name=XSS, admin=True)
    booking_id = make_booking(at(2031, 3, 3, 10), name=XSS, phone=XSS, email=XSS, reason=XSS, conversation_id=XSS)
    make_booking(at(2031, 3, 3, 11), name=XSS, status="cancelled")
    request_id = make_request(at(2031, 3, 4, 14), name=XSS, phone=XSS, text=XSS, reason=XSS, conversation_id=XSS)
    make_request(None, name=XSS, kind="cancel", booking_id=booking_id, backend=XSS, fallback_reason=XSS)
    with TestClient(app, base_url="https://testserver") as client:
        eve = Browser(client)
        eve.login("eve")
        pages = [eve.get("/bookings").text, eve.get("/bookings?cancelled=1").text]
        eve.post(f"/booking-requests/{request_id}/cancel")
        pages.append(eve.post(f"/booking-requests/{request_id}/confirm").text)  # 409: the page again, with the reason
        pages.append(eve.post(f"/booking-requests/{request_id + 1}/confirm", {"start": XSS}).text)  # 400
        eve.post(f"/bookings/{booking_id}/cancel")
        pages.append(eve.get("/audit").text)

    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html and 'onerror="' not in html
    assert pages[0].count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 10  # names, phones, reasons, ...
    assert "Nothing changed: booking request" in pages[2] and "must be a date and time" in pages[3]


@pytest.mark.parametrize("path", ["/", "/login", "/escalations/1", "/audit", "/escalations/999", "/bookings"])
def test_pages_have_no_inline_script_or_style(admin_browser: Browser, open_escalation: Callable[..., int],
                                              bookings: None, path: str) -> None:
    open_escalation("conv-1")

    html = admin_browser.get(path).text

    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'\bsrc="/static/', tag) for tag in scripts)
    assert not re.search(r"<script\b[^>]*>[^<]+</script>", html)
    assert not re.search(r"\son[a-z]+\s*=", html) and " style=" not in html and "<style" not in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere (no CDN, no fonts)


# ------------------------------------------------------------------ admin only


def test_staff_get_403_on_the_audit_log(staff_browser: Browser, admin_browser: Browser) -> None:
    assert staff_browser.get("/audit").status_code == 403
    assert staff_browser.get("/audit?escalation=1").status_code == 403
    assert staff_browser.get("/audit?action=booking_view").status_code == 403
    assert admin_browser.get("/audit").status_code == 200


def test_every_staff_member_works_on_bookings(staff_browser: Browser, api: TestClient, bookings: None) -> None:
    """Bookings are everyday staff work: no administrator needed (only the audit log is admin-only)."""
    assert staff_browser.get("/bookings").status_code == 200
    assert api.get("/api/bookings").status_code == api.get("/api/booking-requests").status_code == 200
    assert staff_browser.post("/booking-requests/1/confirm").status_code == 303
    assert api.post("/api/bookings/1/cancel").status_code == 200


# ------------------------------------------------------------------ tokens and cookies


def test_a_revoked_or_wrong_api_token_gets_401(app: Starlette, db: str, staff_user: StaffMember) -> None:
    new = create_api_token("sam", "integration", database_url=db)
    with TestClient(app, base_url="https://testserver") as client:
        auth = {"Authorization": f"Bearer {new.token}"}
        assert client.get("/api/escalations", headers=auth).status_code == 200
        revoke_api_token(new.info.id, database_url=db)
        assert client.get("/api/escalations", headers=auth).status_code == 401
        assert client.get("/api/escalations", headers={"Authorization": "Bearer " + "x" * 5000}).status_code == 401


def test_session_cookie_flags(browser: Browser, staff_user: StaffMember) -> None:
    response = browser.login("sam")

    cookie = response.headers["set-cookie"].lower()
    assert "console_session=" in cookie
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie and "path=/" in cookie
    assert "max-age" not in cookie.split("console_login")[0]  # ends with the browser session


def test_a_logged_out_cookie_no_longer_works(staff_browser: Browser) -> None:
    cookie = staff_browser.client.cookies.get("console_session")
    staff_browser.post("/logout")

    staff_browser.client.cookies.set("console_session", cookie)

    assert staff_browser.get("/", follow_redirects=False).status_code == 303
    assert staff_browser.client.post("/escalations/1/claim", data={"csrf_token": staff_browser.csrf},
                                     follow_redirects=False).headers["location"] == "/login"


# ------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    ("who", "method", "path", "options"),
    [
        pytest.param("admin_browser", "GET", "/", {}, id="inbox"),
        pytest.param("admin_browser", "GET", "/escalations/1", {}, id="conversation"),
        pytest.param("admin_browser", "GET", "/escalations/1/updates.json", {}, id="poll"),
        pytest.param("admin_browser", "GET", "/audit", {}, id="audit"),
        pytest.param("admin_browser", "GET", "/bookings", {}, id="bookings"),
        pytest.param("api", "GET", "/api/bookings", {}, id="api bookings"),
        pytest.param("api", "POST", "/api/bookings/999/cancel", {}, id="api booking 404"),
        pytest.param("admin_browser", "GET", "/escalations/999", {}, id="not found"),
        pytest.param("api", "GET", "/api/escalations/1", {}, id="api"),
        pytest.param("browser", "GET", "/api/escalations", {}, id="api 401"),
        pytest.param("browser", "GET", "/login", {}, id="login"),
        pytest.param("browser", "GET", "/", {"follow_redirects": False}, id="redirect"),
        pytest.param("browser", "GET", "/static/console.css", {}, id="static"),
        pytest.param("api", "POST", "/api/escalations/1/notes", {"content": b"x" * 100_000}, id="too large"),
    ],
)
def test_security_headers_everywhere(
    request: pytest.FixtureRequest, open_escalation: Callable[..., int], who: str, method: str, path: str,
    options: dict[str, Any],
) -> None:
    """``who`` is the fixture that sends the request: an admin's browser, the API client or a stranger."""
    open_escalation("conv-1")
    sender = request.getfixturevalue(who)
    sender = sender.client if isinstance(sender, Browser) else sender

    headers = sender.request(method, path, **options).headers

    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == ("no-cache" if path.startswith("/static/") else "no-store")


# ------------------------------------------------------------------ bad bodies


def test_a_huge_form_body_is_413(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    open_escalation("conv-1")

    response = staff_browser.post("/escalations/1/reply", {"text": "x" * 100_000})

    assert response.status_code == 413 and fake.sent == []


def test_a_binary_form_body_is_400(staff_browser: Browser, open_escalation: Callable[..., int], fake: FakeRasa) -> None:
    open_escalation("conv-1")
    body = b"csrf_token=" + staff_browser.csrf.encode() + b"&text=\xff\xfe\x00\x01"

    raw = staff_browser.client.post("/escalations/1/reply", content=body, follow_redirects=False,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    encoded = staff_browser.client.post(
        "/escalations/1/reply", content=b"csrf_token=" + staff_browser.csrf.encode() + b"&text=%FF%FE",
        headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False,
    )
    control = staff_browser.post("/escalations/1/reply", {"text": "a\x00b"})

    assert raw.status_code == encoded.status_code == control.status_code == 400
    assert fake.sent == []


# ------------------------------------------------------------------ logs


def test_no_patient_text_in_logs_above_debug(
    staff_browser: Browser, api: TestClient, open_escalation: Callable[..., int], fake: FakeRasa,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Jane Roe 555-0142 overdose"
    phone = "+15550199"  # an SMS conversation's id is the patient's phone number
    escalation_id = open_escalation(phone, "crisis", text=secret, channel="twilio")
    fake.say(phone, "patient", secret)
    staff_browser.get(f"/escalations/{escalation_id}")
    staff_browser.post(f"/escalations/{escalation_id}/reply", {"text": secret})
    staff_browser.post(f"/escalations/{escalation_id}/notes", {"text": secret})
    api.get(f"/api/escalations/{escalation_id}")
    fake.reply_error = "timeout"
    api.post(f"/api/escalations/{escalation_id}/reply", json={"text": secret})
    fake.transcript_error = OSError("boom")
    staff_browser.get(f"/escalations/{escalation_id}")

    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert loud and not any(word in message for message in loud for word in ("555-0142", "Jane", "5550199"))

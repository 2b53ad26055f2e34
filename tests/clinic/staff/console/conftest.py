"""Fixtures of the console tests: a migrated SQLite database, fakes of Rasa, accounts, a browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.booking.scheduling.records import free_code
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, session_scope
from clinic.profile import ClinicProfile
from clinic.staff.accounts import StaffMember, create_api_token, create_user
from clinic.staff.console.app import create_app
from clinic.staff.escalation import escalate
from tests.clinic.booking.requests import create_request
from tests.clinic.booking.scheduling.helpers import booking_settings
from tests.clinic.staff.console import FakeRasa, install
from tests.hours import WEEKDAY_HOURS

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


@dataclass
class Clock:
    """The time :func:`clinic.clock.utcnow` tells while the ``clock`` fixture is in use."""

    now: datetime

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Stops the project's clock (the console's sessions, throttle and confirmations read it);
    ``clock.advance(minutes=31)`` moves it on, with no sleeping."""
    fake = Clock(utcnow())
    monkeypatch.setattr("clinic.clock.utcnow", lambda: fake.now)
    return fake


@pytest.fixture
def hasher() -> PasswordHasher:
    """A cheap argon2id hasher: tests only (production uses the library's defaults)."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRasa:
    return install(monkeypatch)


@pytest.fixture
def db(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def make_user(db: str, hasher: PasswordHasher) -> Callable[..., StaffMember]:
    def make(username: str, *, admin: bool = False, name: str | None = None, password: str = PASSWORD) -> StaffMember:
        return create_user(username, password, display_name=name, is_admin=admin, database_url=db, hasher=hasher)

    return make


@pytest.fixture
def staff_user(make_user: Callable[..., StaffMember]) -> StaffMember:
    return make_user("sam", name="Sam Staff")


@pytest.fixture
def admin_user(make_user: Callable[..., StaffMember]) -> StaffMember:
    return make_user("ada", admin=True, name="Ada Admin")


@pytest.fixture
def open_escalation(db: str) -> Callable[..., int]:
    """Opens an escalation: ``open_escalation("conv-1", "crisis", text=..., rule=..., language="es")`` -> its id."""

    def open_(conversation: str, reason: str = "medical_question", *, text: str = "a question",
              rule: str | None = "named_medicine", channel: str = "rest", message_id: str = "m1",
              language: str | None = None) -> int:
        guard = {"category": reason, "rule": rule} if rule else None
        return escalate(conversation_id=conversation, channel=channel, reason=reason, message_id=message_id,
                        text=text, guard_reason=guard, language=language, database_url=db).escalation_id

    return open_


@pytest.fixture
def console_profile(make_profile: Callable[..., ClinicProfile]) -> ClinicProfile:
    """The sample clinic in Chicago, booking with the built-in calendar."""
    return make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings())


@pytest.fixture
def app(db: str, hasher: PasswordHasher, fake: FakeRasa, console_profile: ClinicProfile) -> Starlette:
    return create_app(db, secure_cookies=True, password_hasher=hasher, profile=console_profile)


@pytest.fixture
def make_booking(db: str) -> Callable[..., int]:
    """Stores a booking: ``make_booking(start, name=..., backend="calcom", status="cancelled")`` -> its id."""

    def make(start: datetime, *, name: str = "Ana María López", phone: str = "+13125550123",
             email: str | None = "ana@example.com", reason: str | None = "depression", backend: str = "builtin",
             status: str = "booked", conversation_id: str = "conv-1", minutes: int = 30) -> int:
        with session_scope(db) as session:
            row = Booking(
                code=free_code(session), conversation_id=conversation_id, channel="socketio", backend=backend,
                external_uid="cal-uid-1" if backend == "calcom" else None, full_name=name, phone=phone, email=email,
                visit_reason=reason, patient_type="new", sms_consent=True, starts_at=as_utc(start),
                ends_at=as_utc(start + timedelta(minutes=minutes)), chair=1 if backend == "builtin" else None,
                status=status, cancelled_by="patient" if status == "cancelled" else None,
            )
            session.add(row)
            session.flush()
            return row.id

    return make


@pytest.fixture
def make_request(db: str) -> Callable[..., int]:
    """Stores a booking request for staff: ``make_request(start, backend="webhook")`` -> its id."""

    def make(start: datetime | None, *, name: str = "Ben Ortiz", phone: str = "+13125550188",
             text: str | None = "Tuesday afternoon", backend: str = "webhook", fallback_reason: str | None = None,
             kind: str = "book", booking_id: int | None = None, reason: str | None = "anxiety",
             conversation_id: str = "+13125550188") -> int:
        return create_request(
            conversation_id=conversation_id, channel="twilio", full_name=name, phone=phone, preferred_time_text=text,
            preferred_time=start, database_url=db, email=None, visit_reason=reason, patient_type="returning",
            sms_consent=False, backend=backend, fallback_reason=fallback_reason, kind=kind, booking_id=booking_id,
            webhook_status="delivered" if backend == "webhook" else None,
        )

    return make


@dataclass
class Browser:
    """A test client that signs in through the form and posts with the page's CSRF token."""

    client: TestClient
    csrf: str | None = None

    def login(self, username: str, password: str = PASSWORD, next_path: str = "/") -> httpx.Response:
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "username": username, "password": password, "next": next_path},
            follow_redirects=False,
        )
        if response.status_code == 303 and "console_session" in response.cookies:
            self.csrf = csrf_of(self.client.get("/").text)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("follow_redirects", False)
        return self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def browser(client: TestClient) -> Browser:
    """Not signed in yet."""
    return Browser(client)


@pytest.fixture
def staff_browser(app: Starlette, staff_user: StaffMember) -> Iterator[Browser]:
    with TestClient(app, base_url="https://testserver") as test_client:
        signed_in = Browser(test_client)
        assert signed_in.login(staff_user.username).status_code == 303
        yield signed_in


@pytest.fixture
def admin_browser(app: Starlette, admin_user: StaffMember) -> Iterator[Browser]:
    with TestClient(app, base_url="https://testserver") as test_client:
        signed_in = Browser(test_client)
        assert signed_in.login(admin_user.username).status_code == 303
        yield signed_in


@pytest.fixture
def api_token(db: str, staff_user: StaffMember) -> str:
    return create_api_token(staff_user.username, "tests", database_url=db).token


@pytest.fixture
def api(app: Starlette, api_token: str) -> Iterator[TestClient]:
    """A client that sends the staff user's bearer token."""
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Bearer {api_token}"}) as c:
        yield c

"""Fixtures of the console tests: a migrated SQLite database, fakes of Rasa, accounts, a browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.console.app import create_app
from clinic.escalation import escalate
from clinic.staff import StaffMember, create_api_token, create_user
from tests.clinic.console import FakeRasa, install

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


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
    """Opens an escalation: ``open_escalation("conv-1", "crisis", text=..., rule=...)`` -> its id."""

    def open_(conversation: str, reason: str = "medical_question", *, text: str = "a question",
              rule: str | None = "named_medicine", channel: str = "rest", message_id: str = "m1") -> int:
        guard = {"category": reason, "rule": rule} if rule else None
        return escalate(conversation_id=conversation, channel=channel, reason=reason, message_id=message_id,
                        text=text, guard_reason=guard, database_url=db).escalation_id

    return open_


@pytest.fixture
def app(db: str, hasher: PasswordHasher, fake: FakeRasa) -> Starlette:
    return create_app(db, secure_cookies=True, password_hasher=hasher)


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

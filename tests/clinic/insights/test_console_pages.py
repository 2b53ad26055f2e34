"""The Insights pages and API by role: admins see everything (the unanswered list audited),
managers see the numbers but never a conversation, staff see no insights."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from clinic.profile import ClinicProfile
from clinic.staff import audit
from clinic.staff.accounts import create_api_token, create_user
from clinic.staff.console.app import create_app
from tests.clinic.insights import scenario
from tests.clinic.staff.console.conftest import PASSWORD, Browser

RANGE = "from=2026-11-10&to=2026-11-11"


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The scenario in one SQLite database, which is also the tracker store."""
    monkeypatch.setenv("TRACKER_STORE_URL", sqlite_url)
    scenario.write_tracker(sqlite_url)
    scenario.write_clinic(sqlite_url)
    return sqlite_url


@pytest.fixture
def app(db: str, profile: ClinicProfile) -> Starlette:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    create_user("ada", PASSWORD, role="admin", database_url=db, hasher=hasher)
    create_user("max", PASSWORD, role="manager", database_url=db, hasher=hasher)
    create_user("sam", PASSWORD, database_url=db, hasher=hasher)
    return create_app(db, password_hasher=hasher, profile=profile)


def _browser(app: Starlette, username: str) -> Iterator[Browser]:
    with TestClient(app, base_url="https://testserver") as client:
        signed_in = Browser(client)
        response = signed_in.login(username, next_path="/insights")
        assert response.status_code == 303
        signed_in.csrf = None
        yield signed_in


@pytest.fixture
def admin(app: Starlette) -> Iterator[Browser]:
    yield from _browser(app, "ada")


@pytest.fixture
def manager(app: Starlette) -> Iterator[Browser]:
    yield from _browser(app, "max")


@pytest.fixture
def staff(app: Starlette) -> Iterator[Browser]:
    yield from _browser(app, "sam")


def _escalation_id(db: str) -> int:
    from clinic.db import Escalation, session_scope

    with session_scope(db) as session:
        return session.query(Escalation.id).filter_by(reason="crisis").scalar()


def test_the_manager_sees_the_numbers(manager: Browser) -> None:
    page = manager.get(f"/insights?{RANGE}")
    assert page.status_code == 200
    assert 'id="chart-conversations"' in page.text and "Containment rate" in page.text
    assert "/insights/unanswered" not in page.text  # no link to patient text
    assert manager.get("/", follow_redirects=False).headers["location"] == "/insights"


@pytest.mark.parametrize("path", ["/escalations/{id}", "/escalations/{id}/updates.json", "/insights/unanswered",
                                  "/bookings", "/audit"])
def test_the_manager_cannot_open_a_transcript_or_the_unanswered_list(manager: Browser, db: str, path: str) -> None:
    assert manager.get(path.format(id=_escalation_id(db)) + f"?{RANGE}").status_code == 403


def test_the_manager_cannot_mark_a_message(manager: Browser, db: str) -> None:
    page = manager.get(f"/insights?{RANGE}").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]  # the sign-out form's
    response = manager.client.post("/insights/unanswered/mark", data={
        "csrf_token": csrf, "event_id": "1", "intent": "greet"})
    assert response.status_code == 403 and "numbers only" in response.text
    assert audit.list_events(db, action="insights_mark") == []


def test_staff_see_no_insights(staff: Browser) -> None:
    assert staff.get(f"/insights?{RANGE}").status_code == 403


def test_the_admin_view_of_the_unanswered_list_is_audited(admin: Browser, db: str) -> None:
    page = admin.get(f"/insights/unanswered?{RANGE}")
    assert page.status_code == 200
    assert "can my dog come to the appointment" in page.text  # fallback
    assert "what are the side effects?" in page.text  # then asked for a person
    assert "does it help with migraines" in page.text  # then "that's not what I asked"
    events = audit.list_events(db, action="insights_unanswered_view")
    assert [(e.username, e.detail) for e in events] == [
        ("ada", "insights unanswered 2026-11-10..2026-11-11: 3 message(s); via console")]


def test_marking_a_message_is_recorded_and_audited(admin: Browser, db: str) -> None:
    page = admin.get(f"/insights/unanswered?{RANGE}")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    event_id = page.text.split('id="message-', 1)[1].split('"', 1)[0]
    response = admin.client.post("/insights/unanswered/mark", follow_redirects=False, data={
        "csrf_token": csrf, "event_id": event_id, "intent": "faq_conditions_treated", "from": "2026-11-10",
        "to": "2026-11-11"})
    assert response.status_code == 303
    assert "marked faq_conditions_treated" in admin.get(response.headers["location"]).text
    [event] = audit.list_events(db, action="insights_mark")
    assert event.detail == f"message {event_id} marked faq_conditions_treated; via console"
    assert event.conversation_id == "web-missed"


def test_an_unknown_intent_is_refused(admin: Browser) -> None:
    page = admin.get(f"/insights/unanswered?{RANGE}")
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = admin.client.post("/insights/unanswered/mark", data={"csrf_token": csrf, "event_id": "1",
                                                                     "intent": "faq_teleportation"})
    assert response.status_code == 400


@pytest.mark.parametrize(("username", "status"), [("ada", 200), ("max", 200), ("sam", 403)])
def test_the_api_answers_admins_and_managers(app: Starlette, db: str, username: str, status: int) -> None:
    token = create_api_token(username, "tests", database_url=db).token
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Bearer {token}"}) as api:
        response = api.get(f"/api/insights?{RANGE}")
        assert response.status_code == status
        if status == 200:
            data = response.json()
            assert data["conversations"]["total"] == 7 and data["containment_rate"] == round(4 / 7, 4)
            assert data["first_reply_seconds"]["p50"] == (300 + 45000) / 2
            assert {"faq_topics", "booking_funnel", "escalations", "crisis_events"} <= data.keys()


def test_the_api_refuses_a_manager_a_transcript(app: Starlette, db: str) -> None:
    token = create_api_token("max", "tests", database_url=db).token
    with TestClient(app, base_url="https://testserver", headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get(f"/api/escalations/{_escalation_id(db)}").status_code == 403
        assert api.get("/api/escalations").status_code == 403


@pytest.mark.parametrize("query", ["from=2026-13-01&to=2026-11-11", "from=2026-11-11&to=2026-11-10",
                                   "from=2020-01-01&to=2026-11-10"])
def test_a_bad_range_is_a_400(manager: Browser, query: str) -> None:
    assert manager.get(f"/insights?{query}").status_code == 400

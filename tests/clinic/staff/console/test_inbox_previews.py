"""The inbox shows what each patient asked and how many messages wait; its search finds escalations
by name, booking code or words (pages and JSON API, audited)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import BotUttered, UserUttered
from sqlalchemy import insert
from starlette.testclient import TestClient

from clinic.clock import utcnow
from clinic.db import Booking, get_engine, session_scope
from clinic.staff import audit
from clinic.staff.transcript import STAFF_METADATA_KEY
from tests.clinic.staff.console.conftest import Browser

EVENTS = SQLTrackerStore.SQLEvent.__table__


@pytest.fixture
def tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """The tracker store the console reads: ``tracker("conv-1", UserUttered(...), ...)`` adds events
    as Rasa would now (in order, each later than the previous one)."""
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    EVENTS.metadata.create_all(get_engine(url), tables=[EVENTS])
    monkeypatch.setenv("TRACKER_STORE_URL", url)
    clock = [utcnow().timestamp()]

    def add(sender: str, *events: UserUttered | BotUttered) -> None:
        rows = []
        for item in events:
            clock[0] = max(clock[0] + 0.001, utcnow().timestamp())
            item.timestamp = clock[0]
            data = item.as_dict()
            rows.append({"sender_id": sender, "type_name": item.type_name, "timestamp": item.timestamp,
                         "intent_name": (data.get("parse_data") or {}).get("intent", {}).get("name"),
                         "data": json.dumps(data)})
        with get_engine(url).begin() as connection:
            connection.execute(insert(EVENTS), rows)

    return add


@pytest.fixture
def escalated(open_escalation: Callable[..., int], tracker: Callable[..., None]) -> int:
    """A web patient whose question escalated, then who wrote twice more (HTML in one message)."""
    tracker("conv-1", UserUttered("is ketamine ok with my lithium?", {"name": "medical_question"}))
    escalation_id = open_escalation("conv-1", text="is ketamine ok with my lithium?")
    tracker("conv-1", BotUttered("I've passed your question to our team."),
            UserUttered("<b>hello?</b> " + "I am still here and waiting for an answer " * 4, {"name": "greet"}))
    return escalation_id


def test_each_inbox_row_shows_the_latest_message_escaped_and_the_count(staff_browser: Browser, escalated: int,
                                                                       db: str) -> None:
    page = staff_browser.get("/")

    assert "&lt;b&gt;hello?&lt;/b&gt; I am still here" in page.text and "<b>hello?" not in page.text
    assert 'data-since-reply="2"' in page.text and "with no staff reply yet" in page.text
    [event] = audit.list_events(db, action="inbox_view")
    assert (event.username, event.detail) == ("sam", f"previews of {escalated}; via console")


def test_the_count_restarts_after_a_staff_reply(staff_browser: Browser, escalated: int, tracker: Callable[..., None],
                                                fake: object) -> None:
    staff_browser.post(f"/escalations/{escalated}/reply", {"text": "Hi, this is Sam from the clinic."})
    tracker("conv-1", BotUttered("Hi, this is Sam.", metadata={STAFF_METADATA_KEY: "Sam"}),
            UserUttered("thanks, when can I call?", {"name": "ask_hours"}))

    [row] = staff_browser.get("/inbox.json").json()["rows"]

    assert (row["preview"], row["since_reply"]) == ("thanks, when can I call?", 1)


def test_the_inbox_json_and_the_api_return_the_preview(staff_browser: Browser, api: TestClient, escalated: int,
                                                       db: str) -> None:
    polled = staff_browser.get("/inbox.json").json()["rows"][0]
    listed = api.get("/api/escalations").json()["escalations"][0]

    assert polled["preview"] == listed["preview"] and polled["preview"].startswith("<b>hello?</b> I am still here")
    assert len(listed["preview"]) <= 100 and listed["since_reply"] == 2
    assert [e.detail for e in audit.list_events(db, action="inbox_view")] == [f"previews of {escalated}; via api"]


def test_an_inbox_without_patient_text_is_not_audited(staff_browser: Browser, db: str) -> None:
    staff_browser.get("/")

    assert audit.list_events(db, action="inbox_view") == []


# ------------------------------------------------------------------ search


@pytest.fixture
def patients(open_escalation: Callable[..., int], db: str) -> dict[str, int]:
    ids = {
        "a": open_escalation("conv-a", text="Is ketamine safe with LITHIUM?"),
        "b": open_escalation("conv-b", text="I want to talk to a person", reason="asked_for_staff"),
        "other": open_escalation("conv-other", text="what about parking"),
    }
    with session_scope(db) as session:
        start = utcnow() + timedelta(days=3)
        session.add(Booking(code="K7M4QX", conversation_id="conv-b", channel="socketio", backend="builtin",
                            full_name="Beatriz Ruiz", phone="+13125550177", starts_at=start,
                            ends_at=start + timedelta(minutes=30), chair=1, status="booked"))
    return ids


@pytest.mark.parametrize(
    ("typed", "found"),
    [("lithium", "a"), ("ruiz", "b"), ("Beatriz Ruiz", "b"), ("k7m-4qx", "b"),
     ("conv-other", "other")],
)
def test_the_search_box_finds_by_text_name_code_or_id(staff_browser: Browser, patients: dict[str, int], db: str,
                                                      typed: str, found: str) -> None:
    page = staff_browser.get("/", params={"find": typed})

    assert page.status_code == 200
    assert f'data-id="{patients[found]}"' in page.text
    assert {f'data-id="{patients[name]}"' in page.text for name in patients if name != found} == {False}
    [event] = audit.list_events(db, action="find")
    assert event.detail == f"by conversation id, name, booking code or text: 1 found ({patients[found]}); via console"
    assert event.conversation_id == f"conv-{'other' if found == 'other' else found[0]}"  # the escalation's own
    if typed != "conv-other":
        assert typed.lower() not in str(event).lower()  # neither a name nor a patient's words are kept


def test_two_letters_do_not_search_inside_messages(staff_browser: Browser, patients: dict[str, int]) -> None:
    page = staff_browser.get("/", params={"find": "li"})

    assert "No escalation found" in page.text


def test_a_percent_sign_is_searched_as_typed(staff_browser: Browser, patients: dict[str, int]) -> None:
    page = staff_browser.get("/", params={"find": "%%%"})

    assert "No escalation found" in page.text


def test_the_api_searches_with_q(api: TestClient, patients: dict[str, int], db: str) -> None:
    response = api.get("/api/escalations", params={"q": "beatriz"})

    assert [row["id"] for row in response.json()["escalations"]] == [patients["b"]]
    assert audit.list_events(db, action="find")[0].detail.endswith("; via api")
    assert api.get("/api/escalations", params={"q": "beatriz", "phone": "3125550177"}).status_code == 400

"""clinic.staff.transcript.patient_activity: the inbox's preview of the latest patient message and
the count since the last staff reply, for a whole page of rows at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url

from clinic.db import get_engine
from clinic.staff.transcript import (
    STAFF_METADATA_KEY,
    ActivityWindow,
    latest_slot_value,
    patient_activity,
    preview,
)

EVENTS = SQLTrackerStore.SQLEvent.__table__
START = datetime(2026, 12, 5, 18, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def tracker_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """An empty tracker store (Rasa's ``events`` table): SQLite, and PostgreSQL in a fresh schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tracker.db'}"
        EVENTS.metadata.create_all(get_engine(url), tables=[EVENTS])
        yield url
        get_engine(url).dispose()
        return
    server = request.getfixturevalue("postgres_server_url")
    schema = f"tracker_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, future=True)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    try:
        EVENTS.metadata.create_all(get_engine(url), tables=[EVENTS])
        yield url
    finally:
        get_engine(url).dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def save(url: str, sender: str, *timed: tuple[float, Event]) -> None:
    """Stores events as Rasa's SQL tracker store does (one row each, the event's JSON in ``data``)."""
    rows = []
    for minutes, item in timed:
        item.timestamp = at(minutes).timestamp()
        data = item.as_dict()
        rows.append({
            "sender_id": sender, "type_name": item.type_name, "timestamp": item.timestamp,
            "intent_name": (data.get("parse_data") or {}).get("intent", {}).get("name"),
            "action_name": data.get("name") if item.type_name == "action" else None, "data": json.dumps(data),
        })
    with get_engine(url).begin() as connection:
        connection.execute(insert(EVENTS), rows)


def patient(said: str, intent: str = "medical_question") -> UserUttered:
    return UserUttered(said, {"name": intent})


def staff(said: str) -> BotUttered:
    return BotUttered(said, metadata={STAFF_METADATA_KEY: "Dana"})


def test_the_preview_is_the_start_of_the_latest_patient_message(tracker_url: str) -> None:
    long = "I started a new antidepressant last week and I am wondering " + "whether that changes anything " * 5
    save(tracker_url, "conv-1", (0, patient("is ketamine ok with lithium?")), (1, BotUttered("I've passed it on.")),
         (5, patient(long)), (6, ActionExecuted("action_handoff_hold")))

    [activity] = patient_activity([ActivityWindow(1, "conv-1", since=at(0.5))], tracker_url=tracker_url).values()

    assert activity.preview.startswith("I started a new antidepressant last week")
    assert len(activity.preview) <= 100 and activity.preview.endswith("…")


def test_the_count_is_of_patient_messages_after_the_last_staff_reply(tracker_url: str) -> None:
    save(tracker_url, "conv-1", (0, patient("question")), (2, staff("Hi, this is Dana.")), (3, patient("thanks")),
         (4, patient("hello?")), (5, BotUttered("Your message is with our team.")))

    activity = patient_activity([ActivityWindow(7, "conv-1", since=at(2))], tracker_url=tracker_url)[7]

    assert (activity.preview, activity.since_count) == ("hello?", 2)


def test_before_any_staff_reply_the_message_that_escalated_counts_too(tracker_url: str) -> None:
    save(tracker_url, "conv-1", (0, patient("earlier small talk", "greet")), (1, patient("am I ok on lithium?")),
         (3, patient("anyone there?")))

    opened_after_the_trigger = ActivityWindow(1, "conv-1", since=at(1.01), count_trigger=True)
    activity = patient_activity([opened_after_the_trigger], tracker_url=tracker_url)[1]

    assert activity.since_count == 2  # "am I ok on lithium?" and "anyone there?", not the small talk


def test_a_resolved_row_previews_what_the_patient_said_until_it_was_resolved(tracker_url: str) -> None:
    save(tracker_url, "conv-1", (0, patient("question")), (10, patient("thank you!")),
         (20, patient("new topic: parking?", "faq_parking")))

    window = ActivityWindow(1, "conv-1", since=at(5), until=at(15))
    assert patient_activity([window], tracker_url=tracker_url)[1].preview == "thank you!"


def test_the_hand_back_is_not_a_patient_message(tracker_url: str) -> None:
    hand_back = UserUttered.create_external("EXTERNAL_handoff_resolved", [])
    save(tracker_url, "conv-1", (0, patient("real question")), (4, hand_back))

    activity = patient_activity([ActivityWindow(1, "conv-1", since=at(1))], tracker_url=tracker_url)[1]

    assert (activity.preview, activity.since_count) == ("real question", 0)


def test_a_page_of_rows_costs_two_statements(tracker_url: str) -> None:
    for n in range(30):
        save(tracker_url, f"conv-{n}", *[(minute, patient(f"message {minute} of {n}")) for minute in range(20)])
    windows = [ActivityWindow(n, f"conv-{n}", since=at(14.5)) for n in range(30)]
    windows.append(ActivityWindow(99, "nobody-wrote", since=at(0)))
    patient_activity(windows[:1], tracker_url=tracker_url)  # the table's columns are read once, then kept
    statements: list[str] = []
    engine = get_engine(tracker_url)
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        found = patient_activity(windows, tracker_url=tracker_url)
    finally:
        event.remove(engine, "before_cursor_execute", listener)

    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
    assert found[12].preview == "message 19 of 12" and found[12].since_count == 5
    assert 99 not in found


def test_no_tracker_store_yet_means_no_previews(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    assert patient_activity([ActivityWindow(1, "conv-1", since=START)], tracker_url=url) == {}


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("hello?", "hello?"),
        ("  two\n\nlines  ", "two lines"),
        ("word " * 40, ("word " * 19).strip() + "…"),
        ("x" * 150, "x" * 99 + "…"),
    ],
)
def test_a_preview_is_one_line_of_at_most_100_characters(said: str, shown: str) -> None:
    assert preview(said) == shown


def test_the_latest_value_of_a_slot(tracker_url: str) -> None:
    save(tracker_url, "conv-1", (0, SlotSet("patient_name", "ana lópez")), (1, SlotSet("language", "es")),
         (2, SlotSet("patient_name", "Ana María López")))

    assert latest_slot_value("conv-1", "patient_name", tracker_url=tracker_url) == "Ana María López"
    assert latest_slot_value("conv-1", "phone", tracker_url=tracker_url) is None

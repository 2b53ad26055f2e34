"""clinic.staff.transcript: what staff read, straight from Rasa's tracker store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.db import get_engine
from clinic.staff.transcript import STAFF_METADATA_KEY, read_transcript


@pytest.fixture
def tracker_url(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    yield url
    get_engine(url).dispose()


def save(url: str, sender: str, events: list) -> None:
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=url.removeprefix("sqlite:///"))
    tracker = DialogueStateTracker.from_events(sender, events)
    asyncio.run(store.save(tracker))
    store.engine.dispose()


def conversation() -> list:
    return [
        ActionExecuted("action_listen"),
        UserUttered("<b>hi</b> i'm on lithium, is it ok?", {"name": "medical_question"}),
        ActionExecuted("action_escalate_to_staff"),
        BotUttered("I've passed it on."),
        SlotSet("handoff", True),
        ActionExecuted("action_listen"),
        UserUttered("hello?", {"name": "greet"}),
        ActionExecuted("action_handoff_hold"),
        BotUttered("Hi, this is Dana from the clinic.", metadata={STAFF_METADATA_KEY: "Dana"}),
        BotUttered(None, data={"buttons": [{"title": "Book", "payload": "/book_consultation"}]}),
    ]


def test_the_transcript_has_patient_bot_and_staff_lines_in_order(tracker_url: str) -> None:
    save(tracker_url, "conv-1", conversation())
    save(tracker_url, "someone-else", [UserUttered("not yours", {"name": "greet"})])

    entries = read_transcript("conv-1", tracker_url=tracker_url)

    assert [(e.sender, e.text, e.staff_name) for e in entries] == [
        ("patient", "<b>hi</b> i'm on lithium, is it ok?", None),
        ("bot", "I've passed it on.", None),
        ("patient", "hello?", None),
        ("staff", "Hi, this is Dana from the clinic.", "Dana"),
        ("bot", "[buttons: Book]", None),
    ]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert all(e.at.tzinfo is not None for e in entries)


def test_only_newer_lines_after_an_id(tracker_url: str) -> None:
    save(tracker_url, "conv-1", conversation())
    first = read_transcript("conv-1", tracker_url=tracker_url)

    newer = read_transcript("conv-1", after_id=first[2].id, tracker_url=tracker_url)

    assert [e.text for e in newer] == [e.text for e in first[3:]]


def test_an_empty_or_new_store_has_no_transcript(tracker_url: str) -> None:
    assert read_transcript("conv-1", tracker_url=tracker_url) == []  # no table yet
    save(tracker_url, "conv-1", conversation())

    assert read_transcript("conv-1", tracker_url=tracker_url) != []  # found once the table exists
    assert read_transcript("nobody", tracker_url=tracker_url) == []

"""clinic.staff.reconcile: escalations a failed action call missed are recorded once, and their
conversations held for staff.

The tracker store is a small SQLite ``events`` table with the layout of Rasa's SQLTrackerStore
(id, sender_id, type_name, timestamp, intent_name, action_name, data as JSON text). Rasa's HTTP
API, which puts a conversation into hand-off, is a recording stand-in (for real:
tests/integration/test_hung_action_server.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine

from clinic.db import get_engine
from clinic.rasa_api import Delivery
from clinic.staff import reconcile as reconcile_module
from clinic.staff.reconcile import reconcile
from tests.clinic.staff import mark_resolved, stored_escalations

DAY = 24 * 3600


class RasaApi:
    """Records the conversations put into hand-off; answers with ``delivery``."""

    def __init__(self) -> None:
        self.held: list[str] = []
        self.delivery = Delivery(True)

    def hold(self, conversation_id: str) -> Delivery:
        self.held.append(conversation_id)
        return self.delivery


@pytest.fixture(autouse=True)
def rasa(monkeypatch: pytest.MonkeyPatch) -> RasaApi:
    """Rasa's HTTP API as the reconciler reaches it by default (never a real server here)."""
    api = RasaApi()
    monkeypatch.setattr(reconcile_module, "hold_for_staff", api.hold)
    return api


@pytest.fixture
def tracker_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    yield url
    get_engine(url).dispose()


@pytest.fixture
def store(tracker_url: str) -> Callable[[str, list[dict[str, Any]]], None]:
    """Writes a conversation's events into a tracker-store ``events`` table."""
    metadata = MetaData()
    events = Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("sender_id", String(255), nullable=False, index=True),
        Column("type_name", String(255), nullable=False),
        Column("timestamp", Float),
        Column("intent_name", String(255)),
        Column("action_name", String(255)),
        Column("data", Text),
    )
    engine = create_engine(tracker_url, future=True)
    metadata.create_all(engine)

    def write(sender: str, conversation: list[dict[str, Any]]) -> None:
        with engine.begin() as connection:
            for event in conversation:
                connection.execute(
                    events.insert().values(
                        sender_id=sender,
                        type_name=event["event"],
                        timestamp=event["timestamp"],
                        intent_name=((event.get("parse_data") or {}).get("intent") or {}).get("name"),
                        action_name=event.get("name") if event["event"] == "action" else None,
                        data=json.dumps(event),
                    )
                )

    yield write
    engine.dispose()


def user(message_id: str | None, text: str, intent: str, at: float, **guard: Any) -> dict[str, Any]:
    parse_data = {"intent": {"name": intent, "confidence": 1.0}, "entities": [], "text": text}
    if guard:
        parse_data["guard"] = guard
    return {"event": "user", "timestamp": at, "text": text, "message_id": message_id,
            "input_channel": "twilio", "parse_data": parse_data}


def action(name: str, at: float) -> dict[str, Any]:
    return {"event": "action", "timestamp": at, "name": name}


def bot(text: str, at: float) -> dict[str, Any]:
    return {"event": "bot", "timestamp": at, "text": text}


def slot(name: str, value: Any, at: float) -> dict[str, Any]:
    return {"event": "slot", "timestamp": at, "name": name, "value": value}


def crisis_turn(message_id: str, at: float, *, recorded: bool, kind: str = "self_harm") -> list[dict[str, Any]]:
    """A crisis turn; ``recorded`` says whether the action set the escalation_id slot."""
    turn = [
        user(message_id, "i want to end it all", "crisis", at, rule="self_harm", category="crisis"),
        slot("crisis_kind", kind, at),
        action("utter_crisis_resources", at + 0.1),
        bot("Please call or text 988...", at + 0.1),
        action("action_crisis_protocol", at + 0.2),
    ]
    if recorded:
        turn += [bot("I'm alerting our team", at + 0.3), slot("escalation_id", 7, at + 0.3)]
    return turn + [action("action_listen", at + 0.4)]


def test_a_missed_crisis_is_recorded_once(store, tracker_url: str, database_url: str) -> None:
    now = time.time()
    store("conv-1", [action("action_session_start", now - 60), *crisis_turn("m1", now - 50, recorded=False)])

    first = reconcile(tracker_url, database_url)
    second = reconcile(tracker_url, database_url)

    assert (first, second) == (1, 0)
    [escalation] = stored_escalations(database_url=database_url)
    assert (escalation.conversation_id, escalation.reason, escalation.urgency) == ("conv-1", "crisis", "urgent")
    assert (escalation.channel, escalation.trigger_message_id) == ("twilio", "m1")
    assert escalation.trigger_text == "i want to end it all"
    assert escalation.guard_reason == {"rule": "self_harm", "category": "crisis"}


@pytest.mark.parametrize(
    ("before", "language"),
    [([], "en"),  # the slot's initial value: no event sets it
     ([slot("language", "es", 1.0)], "es"),
     ([slot("language", "es", 1.0), {"event": "restart", "timestamp": 2.0}], "en")],
)
def test_a_missed_escalation_has_the_conversations_language_at_that_turn(
    store, tracker_url: str, database_url: str, before: list[dict[str, Any]], language: str
) -> None:
    now = time.time()
    later_switch = slot("language", "en" if language == "es" else "es", now)  # after the turn: not its language
    store("conv-1", [*[{**e, "timestamp": now - 100 + e["timestamp"]} for e in before],
                     *crisis_turn("m1", now - 50, recorded=False), later_switch])

    reconcile(tracker_url, database_url)

    [escalation] = stored_escalations(database_url=database_url)
    assert escalation.language == language


def test_a_recorded_crisis_is_left_alone(store, tracker_url: str, database_url: str) -> None:
    store("conv-1", crisis_turn("m1", time.time() - 50, recorded=True))

    assert reconcile(tracker_url, database_url) == 0
    assert stored_escalations(status=None, database_url=database_url) == []


def test_only_the_missed_turns_of_a_conversation_are_recorded(store, tracker_url: str, database_url: str) -> None:
    now = time.time()
    store("conv-1", [*crisis_turn("m1", now - 90, recorded=True), *crisis_turn("m2", now - 50, recorded=False)])

    assert reconcile(tracker_url, database_url) == 1
    [escalation] = stored_escalations(database_url=database_url)
    assert escalation.trigger_message_id == "m2"


def test_a_missed_emergency_keeps_its_kind(store, tracker_url: str, database_url: str) -> None:
    store("conv-1", crisis_turn("m1", time.time() - 50, recorded=False, kind="emergency"))

    reconcile(tracker_url, database_url)

    [escalation] = stored_escalations(database_url=database_url)
    assert escalation.reason == "emergency"


@pytest.mark.parametrize(
    ("intent", "reason"), [("request_human", "asked_for_staff"), ("medical_question", "medical_question")]
)
def test_a_missed_staff_escalation_is_recorded(
    store, tracker_url: str, database_url: str, intent: str, reason: str
) -> None:
    now = time.time()
    store("conv-1", [user("m1", "question", intent, now - 50), action("action_escalate_to_staff", now - 49),
                     bot("I couldn't reach our team's inbox", now - 49), action("action_listen", now - 48)])

    assert reconcile(tracker_url, database_url) == 1
    [escalation] = stored_escalations(database_url=database_url)
    assert (escalation.reason, escalation.urgency) == (reason, "normal")


def test_an_escalation_already_recorded_for_the_message_is_not_repeated(
    store, tracker_url: str, database_url: str
) -> None:
    from clinic.staff.escalation import escalate

    escalate(conversation_id="conv-1", channel="twilio", reason="crisis", message_id="m1", text="...",
             database_url=database_url)
    store("conv-1", crisis_turn("m1", time.time() - 50, recorded=False))

    assert reconcile(tracker_url, database_url) == 0


def test_conversations_older_than_the_window_are_skipped(store, tracker_url: str, database_url: str) -> None:
    store("old", crisis_turn("m1", time.time() - 10 * DAY, recorded=False))
    store("new", crisis_turn("m1", time.time() - DAY, recorded=False))

    assert reconcile(tracker_url, database_url, days=7) == 1
    assert [e.conversation_id for e in stored_escalations(database_url=database_url)] == ["new"]


def test_a_tracker_store_without_events_records_nothing(tracker_url: str, database_url: str) -> None:
    assert reconcile(tracker_url, database_url) == 0


# ------------------------------------------------------------------ hand-off


def medical_turn(message_id: str, at: float) -> list[dict[str, Any]]:
    """A medical question whose escalating action failed (no escalation_id, no hand-off)."""
    return [user(message_id, "i'm on lithium, is it ok?", "medical_question", at),
            action("action_escalate_to_staff", at + 0.1), bot("I couldn't reach our team's inbox", at + 0.1),
            action("action_listen", at + 0.2)]


def test_a_recorded_conversation_is_put_into_hand_off(store, tracker_url: str, database_url: str,
                                                      rasa: RasaApi) -> None:
    store("conv-1", medical_turn("m1", time.time() - 50))

    assert reconcile(tracker_url, database_url) == 1

    assert rasa.held == ["conv-1"]


def test_a_crisis_already_in_hand_off_is_left_alone(store, tracker_url: str, database_url: str,
                                                    rasa: RasaApi) -> None:
    now = time.time()
    turn = crisis_turn("m1", now - 50, recorded=False)
    turn.insert(4, slot("handoff", True, now - 49.9))  # set with the crisis resources (addons/handoff_policy.py)
    store("conv-1", turn)

    assert reconcile(tracker_url, database_url) == 1
    assert rasa.held == []


def test_a_hand_off_that_failed_is_tried_again_until_it_holds(store, tracker_url: str, database_url: str,
                                                              rasa: RasaApi) -> None:
    now = time.time()
    store("conv-1", medical_turn("m1", now - 50))
    rasa.delivery = Delivery(False, "the assistant server is unreachable (ConnectionError)")

    assert reconcile(tracker_url, database_url) == 1
    rasa.delivery = Delivery(True)
    assert reconcile(tracker_url, database_url) == 0  # recorded once, held at the second try
    store("conv-1", [slot("handoff", True, now - 10)])  # what Rasa stored for it
    assert reconcile(tracker_url, database_url) == 0

    assert rasa.held == ["conv-1", "conv-1"]


def test_a_conversation_whose_escalation_staff_resolved_is_not_held_again(
    store, tracker_url: str, database_url: str, rasa: RasaApi
) -> None:
    store("conv-1", medical_turn("m1", time.time() - 50))
    rasa.delivery = Delivery(False, "the assistant server is unreachable (ConnectionError)")
    reconcile(tracker_url, database_url)
    [escalation] = stored_escalations(database_url=database_url)
    mark_resolved(database_url, escalation.id)
    rasa.delivery = Delivery(True)

    reconcile(tracker_url, database_url)

    assert rasa.held == ["conv-1"]  # only the failed first try

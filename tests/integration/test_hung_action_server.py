"""A hung action server (SIGSTOP) never swallows a crisis, and what a failed action missed is
completed later: over the SMS line, through the real Rasa server.

``test_action_server_down.py`` covers an action server that is not running (connection refused).
Here it is stopped with SIGSTOP: connections are accepted, nothing is answered, as when it hangs.
``ACTION_TIMEOUT_SECONDS`` is 2 s, so each custom action fails after 2 s. Twilio's side is played
by a local Messages API (tests/clinic/staff/notifiers/servers.py), as in
tests/addons/test_twilio_channel_server.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from clinic.channels.sms import SmsTexts
from clinic.launcher import Stack, wait_until_up
from clinic.rasa_api import hold_for_staff
from clinic.staff.reconcile import reconcile
from tests.addons.test_twilio_channel_server import Phone
from tests.clinic.staff import stored_escalations
from tests.clinic.staff.notifiers.servers import TwilioStub
from tests.integration.conftest import sms_env, started_stack, wait_for

ACTION_TIMEOUT = 2.0
RESOURCES = ("988", "741741", "911")
CALL_US = "Please call us at"  # utter_escalation_failed: the safe reply when an action cannot run
PASSED_ON = "I've passed it on"  # utter_escalated_medical


@pytest.fixture(scope="module")
def sms_stack(model: str, twilio: TwilioStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var = tmp_path_factory.mktemp("hung")
    env = sms_env(var, twilio, ACTION_TIMEOUT_SECONDS=str(ACTION_TIMEOUT))
    with started_stack(model, env, log_dir=var / "logs") as running:
        yield running


def _action_server(stack: Stack) -> subprocess.Popen:
    [actions] = [p for p in stack.processes if "actions" in p.args]
    return actions


@contextmanager
def _hung(stack: Stack) -> Iterator[None]:
    """The action server stopped (SIGSTOP) meanwhile: it accepts connections and answers nothing."""
    actions = _action_server(stack)
    os.kill(actions.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(actions.pid, signal.SIGCONT)
    assert wait_until_up(f"http://127.0.0.1:{stack.action_port}/health", 30, [actions])


def _tracker(stack: Stack, conversation_id: str) -> dict[str, Any]:
    response = requests.get(f"http://127.0.0.1:{stack.rasa_port}/conversations/{conversation_id}/tracker",
                            timeout=10)
    response.raise_for_status()
    return response.json()


def _turn_saved(stack: Stack, phone: Phone, text: str) -> dict[str, Any] | None:
    """The tracker once the patient's message ``text`` and the turn after it are saved."""
    tracker = _tracker(stack, phone.number)
    events = tracker.get("events") or []
    said = [i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == text]
    if said and any(e["event"] == "action" and e.get("name") == "action_listen" for e in events[said[-1]:]):
        return tracker
    return None


def _bot_texts_after(tracker: dict[str, Any], text: str) -> str:
    events = tracker["events"]
    start = max(i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == text)
    return " ".join(e.get("text") or "" for e in events[start:] if e["event"] == "bot")


def test_a_crisis_text_while_the_action_server_hangs(sms_stack: Stack, twilio: TwilioStub) -> None:
    phone = Phone(sms_stack, twilio, "+15005551101")
    database = sms_stack.env["CLINIC_DATABASE_URL"]
    crisis = "i want to kill myself tonight"

    with _hung(sms_stack):
        started = time.monotonic()
        response = phone.text(crisis)
        answered_in = time.monotonic() - started

        # Twilio has its answer at once; the 988 text follows through the Messages API.
        assert response.status_code == 200 and "<Response></Response>" in response.text
        assert answered_in < 2.0
        texted = " ".join(phone.received(wait=20))
        assert all(number in texted for number in RESOURCES)
        # The whole turn is in the tracker: the message, the crisis resources, the safe reply of the
        # action that could not run, and the hand-off.
        tracker = wait_for(lambda: _turn_saved(sms_stack, phone, crisis), timeout=30)
        assert tracker is not None, "the crisis turn never reached the tracker"
        replies = _bot_texts_after(tracker, crisis)
        assert all(number in replies for number in RESOURCES) and CALL_US in replies
        assert tracker["slots"]["handoff"] is True
        assert phone.number not in {e.conversation_id for e in stored_escalations(database_url=database)}

    # Once the action server is back, the record is completed (by the reconciler, or by the action
    # server running the request Rasa gave up on): urgent, once.
    reconcile(sms_stack.env["TRACKER_STORE_URL"], database,
              hold=lambda conversation: hold_for_staff(conversation, base_url=_api(sms_stack)))
    escalations = [e for e in stored_escalations(database_url=database) if e.conversation_id == phone.number]
    assert [(e.reason, e.urgency, e.channel) for e in escalations] == [("crisis", "urgent", "twilio")]
    assert escalations[0].trigger_text == crisis


def test_a_medical_question_missed_by_a_hung_action_is_recorded_and_held_for_staff(
    sms_stack: Stack, twilio: TwilioStub
) -> None:
    phone = Phone(sms_stack, twilio, "+15005551102")
    database, tracker_url = sms_stack.env["CLINIC_DATABASE_URL"], sms_stack.env["TRACKER_STORE_URL"]
    question = "I take lithium for my bipolar, is ketamine safe for me?"

    with _hung(sms_stack):
        phone.text(question)
        assert CALL_US in " ".join(phone.received(wait=20))
        tracker = wait_for(lambda: _turn_saved(sms_stack, phone, question), timeout=30)
        assert tracker is not None and not tracker["slots"]["handoff"]  # the escalating action never ran

    # Recorded by the reconciler, or by the action server itself when it woke up and ran the request
    # Rasa had given up on (the record is idempotent per message); the hand-off is the reconciler's.
    reconcile(tracker_url, database, hold=lambda conversation: hold_for_staff(conversation, base_url=_api(sms_stack)))
    [escalation] = [e for e in stored_escalations(database_url=database) if e.conversation_id == phone.number]
    assert escalation.reason == "medical_question"
    assert _tracker(sms_stack, phone.number)["slots"]["handoff"] is True

    # Held for staff: the next message is attached to the escalation; the assistant answers only
    # with the hand-off's acknowledgement, not the question.
    phone.text("hello? how much does an infusion cost?")
    [acknowledgement] = phone.received(wait=6)
    assert acknowledgement.startswith("Your message is with our team"), acknowledgement
    [escalation] = [e for e in stored_escalations(database_url=database) if e.conversation_id == phone.number]
    assert [m.text for m in escalation.messages][-1] == "hello? how much does an infusion cost?"


def test_a_picture_with_a_medical_question_is_escalated_and_the_patient_told(
    sms_stack: Stack, twilio: TwilioStub
) -> None:
    phone = Phone(sms_stack, twilio, "+15005551103")
    database = sms_stack.env["CLINIC_DATABASE_URL"]
    note = SmsTexts().get("media_with_text")

    phone.text("what's this rash?", NumMedia="1", MediaUrl0="https://api.twilio.com/2010-04-01/x/Media/ME1",
               MediaContentType0="image/jpeg")

    [reply, *_] = phone.received(wait=20)
    assert PASSED_ON in reply and note in reply  # one reply: escalated, and the picture was not read
    [escalation] = [e for e in stored_escalations(database_url=database) if e.conversation_id == phone.number]
    assert (escalation.reason, escalation.trigger_text) == ("medical_question", "what's this rash?")


def test_a_redelivered_text_is_answered_once(sms_stack: Stack, twilio: TwilioStub) -> None:
    phone = Phone(sms_stack, twilio, "+15005551104")
    fields = {"MessageSid": "SM" + "d" * 32}

    assert phone.text("how much is an infusion?", **fields).status_code == 200
    assert phone.text("how much is an infusion?", **fields).status_code == 200  # Twilio's re-delivery

    assert any("$" in part for part in phone.received(wait=20))
    assert [e["text"] for e in phone.tracker_events()] == ["how much is an infusion?"]


def _api(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.rasa_port}"

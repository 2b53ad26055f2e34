"""actions.safety: the crisis protocol and escalation to staff."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions._common import after_hours_note
from actions.safety import ActionCrisisProtocol, ActionEscalateToStaff, ActionSafetyCheckin
from tests.actions.trackers import make_tracker
from tests.clinic.staff import stored_escalations
from tests.hours import ALWAYS_OPEN

CHICAGO = ZoneInfo("America/Chicago")
GUARD = {"category": "crisis", "rule": "self_harm", "matched": ["kill myself"], "language": "en"}


def run(action, dispatcher, tracker, domain):
    return asyncio.run(action.run(dispatcher, tracker, domain))


def test_names_match_the_domain(domain) -> None:
    assert ActionSafetyCheckin().name() == "action_safety_checkin" in domain["actions"]
    assert ActionCrisisProtocol().name() == "action_crisis_protocol" in domain["actions"]
    assert ActionEscalateToStaff().name() == "action_escalate_to_staff" in domain["actions"]


# ------------------------------------------------------------------ safety check-in


def test_the_safety_check_in_flags_the_conversation_for_staff_without_a_hand_off(
    clinic_db, use_profile, dispatcher, domain
) -> None:
    guard = {"category": None, "rule": None, "safety": "checkin", "risk": {"crisis": 0.3, "emergency": 0.0}}
    tracker = make_tracker("not sure any of it matters", "faq_how_fast", guard=guard)

    events = run(ActionSafetyCheckin(), dispatcher, tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert (escalation.reason, escalation.urgency) == ("safety_checkin", "normal")
    assert escalation.guard_reason["risk"]["crisis"] == 0.3  # staff see what decided
    assert events == []  # no hand-off: the assistant goes on answering
    assert dispatcher.messages == []  # Rasa itself asked the question


# ------------------------------------------------------------------ crisis protocol


def test_the_crisis_protocol_records_an_urgent_escalation(clinic_db, use_profile, dispatcher, domain) -> None:
    tracker = make_tracker("i want to kill myself", "crisis", slots={"crisis_kind": "self_harm"}, guard=GUARD)

    events = run(ActionCrisisProtocol(), dispatcher, tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert events == [SlotSet("handoff", True), SlotSet("escalation_id", escalation.id)]
    assert dispatcher.messages[0]["response"] == "utter_crisis_staff_alerted"
    assert len(dispatcher.messages) == 1
    assert (escalation.reason, escalation.urgency, escalation.channel) == ("crisis", "urgent", "twilio")
    assert (escalation.trigger_message_id, escalation.trigger_text) == ("msg-1", "i want to kill myself")
    assert escalation.guard_reason == GUARD


def test_a_crisis_in_a_spanish_conversation_is_recorded_as_spanish(clinic_db, use_profile, dispatcher,
                                                                   domain) -> None:
    tracker = make_tracker("ya no quiero vivir", "crisis", slots={"crisis_kind": "self_harm", "language": "es"})

    run(ActionCrisisProtocol(), dispatcher, tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert escalation.language == "es"  # staff see who can take it


def test_an_emergency_is_recorded_as_such(clinic_db, use_profile, dispatcher, domain) -> None:
    tracker = make_tracker("my dad is having a seizure", "crisis", slots={"crisis_kind": "emergency"})

    run(ActionCrisisProtocol(), dispatcher, tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert (escalation.reason, escalation.urgency) == ("emergency", "urgent")


def test_the_crisis_protocol_leaves_an_active_form(clinic_db, use_profile, dispatcher, domain) -> None:
    tracker = make_tracker(
        "i can't go on", "crisis", active_loop="booking_form",
        slots={"crisis_kind": "self_harm", "patient_name": "Jane Doe", "requested_slot": "phone"},
    )

    events = run(ActionCrisisProtocol(), dispatcher, tracker, domain)

    assert ActiveLoop(None) in events
    assert SlotSet("requested_slot", None) in events
    assert SlotSet("patient_name", None) in events  # a later booking starts afresh
    assert SlotSet("handoff", True) in events


def test_a_retried_crisis_turn_is_not_recorded_twice(clinic_db, use_profile, domain) -> None:
    tracker = make_tracker("i want to kill myself", "crisis", slots={"crisis_kind": "self_harm"})

    first = run(ActionCrisisProtocol(), CollectingDispatcher(), tracker, domain)
    second = run(ActionCrisisProtocol(), CollectingDispatcher(), tracker, domain)

    assert first == second
    [escalation] = stored_escalations(database_url=clinic_db)
    assert [m.message_id for m in escalation.messages] == ["msg-1"]


def test_the_crisis_protocol_still_answers_when_the_database_fails(broken_db, use_profile, dispatcher, domain,
                                                                   caplog) -> None:
    tracker = make_tracker("i want to kill myself", "crisis", slots={"crisis_kind": "self_harm"})

    events = run(ActionCrisisProtocol(), dispatcher, tracker, domain)

    # No escalation_id slot: the reconciler finds the turn and records it later. Staff still
    # hold the conversation: the patient was told a person is being alerted.
    assert events == [SlotSet("handoff", True)]
    assert [m["response"] for m in dispatcher.messages] == ["utter_crisis_staff_alerted"]
    assert "reconciler will retry" in caplog.text
    assert "kill myself" not in caplog.text  # the patient's words are never logged


# ------------------------------------------------------------------ escalation to staff


@pytest.mark.parametrize(
    ("intent", "reason", "response"),
    [("medical_question", "medical_question", "utter_escalated_medical"),
     ("request_human", "asked_for_staff", "utter_escalated_human")],
)
def test_escalation_to_staff(clinic_db, use_profile, dispatcher, domain, intent, reason, response) -> None:
    use_profile(hours=ALWAYS_OPEN)
    tracker = make_tracker("can I take it with my xanax?", intent, channel="socketio")

    events = run(ActionEscalateToStaff(), dispatcher, tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert events == [SlotSet("escalation_id", escalation.id), SlotSet("handoff", True)]
    assert (escalation.reason, escalation.urgency, escalation.channel) == (reason, "normal", "socketio")
    [message] = dispatcher.messages
    assert (message["response"], message["after_hours"]) == (response, "")


def test_a_practical_question_beside_a_personal_one_is_answered_too(
    clinic_db, use_profile, dispatcher, domain
) -> None:
    use_profile(hours=ALWAYS_OPEN)
    reading = {"sentence_intents": [{"name": "medical_question", "confidence": 0.9},
                                    {"name": "faq_cost_insurance", "confidence": 0.8},
                                    {"name": "faq_side_effects", "confidence": 0.9}]}
    tracker = make_tracker("im on lithium, can i do this? how much is it? and what are the side effects?",
                           "medical_question", reading=reading)

    run(ActionEscalateToStaff(), dispatcher, tracker, domain)

    # the cost is answered; a clinical question never is, beside the patient's own case
    assert [m["response"] for m in dispatcher.messages] == ["utter_escalated_medical", "utter_faq_cost_insurance"]


def test_escalation_while_closed_says_when_staff_will_answer(clinic_db, use_profile, dispatcher, domain) -> None:
    use_profile(hours={day: "closed" for day in ALWAYS_OPEN})
    tracker = make_tracker("real person please", "request_human")

    run(ActionEscalateToStaff(), dispatcher, tracker, domain)

    assert dispatcher.messages[0]["after_hours"] == (
        " We're closed right now, so that will be as soon as the clinic reopens."
    )


@pytest.mark.parametrize("language", ["es", "en"])
def test_escalation_to_staff_keeps_the_conversations_language(clinic_db, use_profile, domain, language) -> None:
    tracker = make_tracker("tomo litio, puedo hacerlo?", "medical_question", slots={"language": language})

    run(ActionEscalateToStaff(), CollectingDispatcher(), tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert escalation.language == language


def test_an_escalation_raised_after_switching_to_spanish_becomes_spanish(clinic_db, use_profile, domain) -> None:
    run(ActionEscalateToStaff(), CollectingDispatcher(),
        make_tracker("agent please", "request_human", slots={"language": "en"}), domain)

    run(ActionCrisisProtocol(), CollectingDispatcher(),
        make_tracker("me quiero matar", "crisis", message_id="msg-2",
                     slots={"crisis_kind": "self_harm", "language": "es"}), domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert (escalation.urgency, escalation.language) == ("urgent", "es")


def test_a_later_message_attaches_to_the_same_escalation(clinic_db, use_profile, domain) -> None:
    first = run(ActionEscalateToStaff(), CollectingDispatcher(), make_tracker("agent", "request_human"), domain)
    second = run(
        ActionEscalateToStaff(), CollectingDispatcher(),
        make_tracker("I'm on lexapro", "medical_question", message_id="msg-2"), domain,
    )

    assert first == second
    [escalation] = stored_escalations(database_url=clinic_db)
    assert [m.message_id for m in escalation.messages] == ["msg-1", "msg-2"]


def test_escalation_inside_the_form_pauses_it_and_keeps_the_answers(clinic_db, use_profile, dispatcher,
                                                                    domain) -> None:
    tracker = make_tracker("can i do this on lithium", "medical_question", active_loop="booking_form",
                           slots={"patient_name": "Jane Doe", "requested_slot": "phone"})

    events = run(ActionEscalateToStaff(), dispatcher, tracker, domain)

    assert ActiveLoop(None) in events and SlotSet("handoff", True) in events
    assert not any(e.get("name") == "patient_name" for e in events)  # kept for when booking resumes


def test_escalation_to_staff_when_the_database_fails(broken_db, use_profile, dispatcher, domain) -> None:
    events = run(ActionEscalateToStaff(), dispatcher, make_tracker("agent", "request_human"), domain)

    # The patient is told to call: the assistant keeps answering (no hand-off).
    assert events == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_escalation_failed"]


# ------------------------------------------------------------------ after-hours note


@pytest.mark.parametrize(
    ("now", "note"),
    [
        (datetime(2026, 4, 13, 10, 0, tzinfo=CHICAGO), ""),  # Monday, open
        (datetime(2026, 4, 13, 19, 0, tzinfo=CHICAGO),
         " We're closed right now, so that will be from tomorrow (Tuesday) at 8 AM."),
        (datetime(2026, 4, 18, 14, 0, tzinfo=CHICAGO), " We're closed right now, so that will be from Monday at 8 AM."),
        (datetime(2026, 4, 13, 12, 30, tzinfo=ZoneInfo("UTC")),
         " We're closed right now, so that will be from today at 8 AM."),
    ],
)
def test_after_hours_note(use_profile, now: datetime, note: str) -> None:
    assert after_hours_note(now) == note

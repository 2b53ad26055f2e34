"""actions.handoff: messages while staff hold the conversation, and handing it back."""

from __future__ import annotations

import asyncio

from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import ActionHandoffHold, ActionHandoffResolved
from clinic.staff.escalation import escalate
from tests.actions.trackers import make_tracker
from tests.clinic.staff import stored_escalations


def run(action, dispatcher, tracker, domain):
    return asyncio.run(action.run(dispatcher, tracker, domain))


def test_names_match_the_domain(domain) -> None:
    assert ActionHandoffHold().name() == "action_handoff_hold" in domain["actions"]
    assert ActionHandoffResolved().name() == "action_handoff_resolved" in domain["actions"]


def test_a_message_during_hand_off_is_attached_and_not_answered(clinic_db, dispatcher, domain) -> None:
    opened = escalate(conversation_id="conv-1", channel="twilio", reason="asked_for_staff", message_id="m0",
                      text="agent please", database_url=clinic_db)
    tracker = make_tracker("is anyone there?", "greet", message_id="m1",
                           slots={"handoff": True, "escalation_id": opened.escalation_id})

    events = run(ActionHandoffHold(), dispatcher, tracker, domain)

    assert events == [] and dispatcher.messages == []
    [escalation] = stored_escalations(database_url=clinic_db)
    assert [(m.message_id, m.reason) for m in escalation.messages] == [("m0", "asked_for_staff"), ("m1", "handoff")]
    assert escalation.last_patient_message_at is not None


def test_the_same_message_twice_is_attached_once(clinic_db, domain) -> None:
    escalate(conversation_id="conv-1", channel="twilio", reason="medical_question", message_id="m0",
             text="on lithium", database_url=clinic_db)
    tracker = make_tracker("hello?", "greet", message_id="m1", slots={"handoff": True})

    run(ActionHandoffHold(), CollectingDispatcher(), tracker, domain)
    run(ActionHandoffHold(), CollectingDispatcher(), tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert [m.message_id for m in escalation.messages] == ["m0", "m1"]


def test_a_held_conversation_without_an_open_escalation_gets_a_new_one(clinic_db, domain) -> None:
    tracker = make_tracker("hello? anyone?", "greet", slots={"handoff": True, "escalation_id": 99})

    events = run(ActionHandoffHold(), CollectingDispatcher(), tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert escalation.reason == "asked_for_staff" and escalation.status == "open"
    assert events == [SlotSet("escalation_id", escalation.id)]


def test_a_patient_who_switches_to_spanish_while_held_shows_as_spanish(clinic_db, domain) -> None:
    escalate(conversation_id="conv-1", channel="twilio", reason="asked_for_staff", message_id="m0",
             text="agent please", language="en", database_url=clinic_db)
    tracker = make_tracker("hola, hablan español?", "greet", message_id="m1",
                           slots={"handoff": True, "language": "es"})

    run(ActionHandoffHold(), CollectingDispatcher(), tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert escalation.language == "es"


def test_a_new_escalation_for_a_held_spanish_conversation_is_spanish(clinic_db, domain) -> None:
    tracker = make_tracker("hola? hay alguien?", "greet", slots={"handoff": True, "language": "es"})

    run(ActionHandoffHold(), CollectingDispatcher(), tracker, domain)

    [escalation] = stored_escalations(database_url=clinic_db)
    assert escalation.language == "es"


def test_hold_is_quiet_even_when_the_database_fails(broken_db, dispatcher, domain) -> None:
    tracker = make_tracker("hello?", "greet", slots={"handoff": True})

    assert run(ActionHandoffHold(), dispatcher, tracker, domain) == []
    assert dispatcher.messages == []


def test_hand_back_tells_the_patient_and_resets_the_state(dispatcher, domain) -> None:
    tracker = make_tracker("/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved",
                           slots={"handoff": True, "escalation_id": 4})

    events = run(ActionHandoffResolved(), dispatcher, tracker, domain)

    assert [m["response"] for m in dispatcher.messages] == ["utter_handoff_returned"]
    assert events == [SlotSet("handoff", False), SlotSet("escalation_id", None)]


def test_hand_back_of_a_conversation_that_was_never_held_says_nothing(dispatcher, domain) -> None:
    # e.g. the reconciler recorded an escalation the action server missed: the bot never went quiet
    tracker = make_tracker("/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved", slots={"handoff": False})

    events = run(ActionHandoffResolved(), dispatcher, tracker, domain)

    assert dispatcher.messages == []
    assert events == [SlotSet("handoff", False), SlotSet("escalation_id", None)]

"""actions.booking: the booking form's validation, submission and cancelling."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from rasa_sdk.events import ActiveLoop, SlotSet
from sqlalchemy import select

from actions.booking import ActionCancelBookingForm, ActionSubmitBooking, ValidateBookingForm
from clinic.db import BookingRequest, session_scope
from tests.actions.trackers import make_tracker

FORM_SLOTS = ("patient_name", "phone", "preferred_time", "requested_slot")


def run(action, dispatcher, tracker, domain):
    return asyncio.run(action.run(dispatcher, tracker, domain))


def answer(slot: str, text: str):
    """The tracker after the patient answered the form's question for ``slot``."""
    return make_tracker(
        text, "inform", active_loop="booking_form", slots={"requested_slot": slot, slot: text},
        after_user=[{"event": "slot", "name": slot, "value": text, "timestamp": 3.1}],
    )


def test_names_match_the_domain(domain) -> None:
    assert ValidateBookingForm().name() == "validate_booking_form" in domain["actions"]
    assert ValidateBookingForm().form_name() == "booking_form" in domain["forms"]
    assert ActionSubmitBooking().name() == "action_submit_booking" in domain["actions"]
    assert ActionCancelBookingForm().name() == "action_cancel_booking_form" in domain["actions"]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("slot", "typed", "value"),
    [
        ("patient_name", "my name is Ana María López", "Ana María López"),
        ("phone", "you can reach me at (312) 555-0123", "+13125550123"),
    ],
)
def test_a_good_answer_is_kept_cleaned(use_profile, dispatcher, domain, slot: str, typed: str, value: str) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer(slot, typed), domain)

    assert events == [SlotSet(slot, value)]
    assert dispatcher.messages == []


@pytest.mark.parametrize(
    ("slot", "typed", "response"),
    [
        ("patient_name", "12345", "utter_invalid_name"),
        ("patient_name", "thank you", "utter_invalid_name"),
        ("phone", "555-0123", "utter_invalid_phone"),
        ("phone", "call me", "utter_invalid_phone"),
        ("preferred_time", "whenever", "utter_invalid_time"),
        ("preferred_time", "yesterday", "utter_invalid_time"),
        ("preferred_time", "sunday at 10am", "utter_invalid_time"),  # closed on Sundays
        ("preferred_time", "when pigs fly", "utter_invalid_time"),
    ],
)
def test_a_bad_answer_is_asked_again_saying_what_was_wrong(use_profile, dispatcher, domain, slot: str, typed: str,
                                                           response: str) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer(slot, typed), domain)

    assert events == [SlotSet(slot, None)]
    assert [m["response"] for m in dispatcher.messages] == [response]


def test_a_preferred_time_is_stored_as_a_clinic_time(use_profile, dispatcher, domain) -> None:
    [event] = run(ValidateBookingForm(), dispatcher, answer("preferred_time", "next Tuesday at 10am"), domain)

    when = datetime.fromisoformat(event["value"])
    assert event["name"] == "preferred_time"
    assert (when.strftime("%A"), when.hour, when.minute) == ("Tuesday", 10, 0)
    assert when.utcoffset().total_seconds() in (-5 * 3600, -6 * 3600)  # Chicago
    assert when > datetime.now(timezone.utc)
    assert dispatcher.messages == []


# ------------------------------------------------------------------ submitting


def _filled(when: str = "2026-04-21T14:00:00-05:00"):
    slots = {"patient_name": "Ana López", "phone": "+13125550123", "preferred_time": when}
    return make_tracker("2pm next tuesday", "inform", slots=slots, channel="socketio")


def test_submitting_stores_the_request_and_confirms(clinic_db, use_profile, dispatcher, domain) -> None:
    events = run(ActionSubmitBooking(), dispatcher, _filled(), domain)

    assert events == [SlotSet(slot, None) for slot in FORM_SLOTS]
    [message] = dispatcher.messages
    assert message["response"] == "utter_booking_requested"
    assert message["preferred_time_display"] == "Tuesday, April 21 at 2 PM"
    assert message["phone_display"] == "(312) 555-0123"
    with session_scope(clinic_db) as session:
        [request] = session.execute(select(BookingRequest)).scalars().all()
    assert (request.conversation_id, request.channel, request.full_name, request.phone) == (
        "conv-1", "socketio", "Ana López", "+13125550123",
    )
    assert request.preferred_time_text == "Tuesday, April 21 at 2 PM"


def test_submitting_when_the_database_fails(broken_db, use_profile, dispatcher, domain) -> None:
    events = run(ActionSubmitBooking(), dispatcher, _filled(), domain)

    assert events == []  # the answers are kept, so nothing the patient typed is lost
    assert [m["response"] for m in dispatcher.messages] == ["utter_escalation_failed"]


def test_cancelling_leaves_the_form_and_keeps_nothing(dispatcher, domain) -> None:
    tracker = make_tracker("stop", "deny", active_loop="booking_form",
                           slots={"patient_name": "Ana López", "requested_slot": "phone"})

    events = run(ActionCancelBookingForm(), dispatcher, tracker, domain)

    assert events == [ActiveLoop(None), *(SlotSet(slot, None) for slot in FORM_SLOTS)]
    assert [m["response"] for m in dispatcher.messages] == ["utter_booking_cancelled"]

"""The booking form: validation and hand-off of the request (logic: clinic.booking)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions._common import FORM_SLOTS, channel_of, profile_cache
from clinic.booking import create_request
from clinic.contact import clean_name, display_phone, normalize_phone
from clinic.timeparse import display_time, parse_preferred_time

logger = logging.getLogger(__name__)


class ValidateBookingForm(FormValidationAction):
    """Checks each answer; a bad one is re-asked with a message that says what was wrong."""

    def name(self) -> str:
        return "validate_booking_form"

    def validate_patient_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        name = clean_name(str(value or ""))
        if name is None:
            dispatcher.utter_message(response="utter_invalid_name")
        return {"patient_name": name}

    def validate_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        phone = normalize_phone(str(value or ""))
        if phone is None:
            dispatcher.utter_message(response="utter_invalid_phone")
        return {"phone": phone}

    def validate_preferred_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        parsed = parse_preferred_time(str(value or ""), profile_cache().get(), datetime.now(timezone.utc))
        if parsed.problem is not None:
            dispatcher.utter_message(response="utter_invalid_time")
            return {"preferred_time": None}
        return {"preferred_time": parsed.when.isoformat()}


class ActionSubmitBooking(Action):
    """Stores the request for staff and confirms what happens next."""

    def name(self) -> str:
        return "action_submit_booking"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        when = datetime.fromisoformat(tracker.get_slot("preferred_time"))
        phone = tracker.get_slot("phone")
        try:
            create_request(
                conversation_id=tracker.sender_id,
                channel=channel_of(tracker),
                full_name=tracker.get_slot("patient_name"),
                phone=phone,
                preferred_time_text=display_time(when),
                preferred_time=when,
            )
        except SQLAlchemyError:
            logger.exception("could not store the booking request")
            dispatcher.utter_message(response="utter_escalation_failed")
            return []
        dispatcher.utter_message(
            response="utter_booking_requested",
            preferred_time_display=display_time(when),
            phone_display=display_phone(phone),
        )
        return [SlotSet(slot, None) for slot in FORM_SLOTS]


class ActionCancelBookingForm(Action):
    """Leaves the booking form on "stop" / "never mind", keeping nothing it collected."""

    def name(self) -> str:
        return "action_cancel_booking_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_booking_cancelled")
        return [ActiveLoop(None), *(SlotSet(slot, None) for slot in FORM_SLOTS)]

"""Hand-off to staff: holding the conversation, and handing it back (logic: clinic.staff.escalation)."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions._common import channel_of, language_of
from clinic.staff.escalation import attach_message

logger = logging.getLogger(__name__)


class ActionHandoffHold(Action):
    """A message written while staff hold the conversation: attached for staff, no bot reply.

    The message is in the tracker store either way (the console's transcript reads it there);
    attaching it marks the escalation as having news for staff.
    """

    def name(self) -> str:
        return "action_handoff_hold"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        latest = tracker.latest_message or {}
        try:
            escalation_id = attach_message(
                conversation_id=tracker.sender_id,
                channel=channel_of(tracker),
                message_id=latest.get("message_id"),
                text=latest.get("text"),
                language=language_of(tracker),
            )
        except SQLAlchemyError:
            logger.exception("could not attach a hand-off message to its escalation")
            return []
        if escalation_id != tracker.get_slot("escalation_id"):
            return [SlotSet("escalation_id", escalation_id)]
        return []


class ActionHandoffResolved(Action):
    """Staff resolved the escalation: the assistant takes the conversation back and says so."""

    def name(self) -> str:
        return "action_handoff_resolved"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.get_slot("handoff"):
            dispatcher.utter_message(response="utter_handoff_returned")
        return [SlotSet("handoff", False), SlotSet("escalation_id", None)]

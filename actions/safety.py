"""The crisis protocol and escalation to staff (logic: clinic.staff.escalation, clinic.safety.guard)."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions._common import FORM_SLOTS, after_hours_note, channel_of, language_of
from clinic.staff.escalation import escalate

logger = logging.getLogger(__name__)

# Questions answered beside an escalation: practical, never clinical (docs/POLICY.md). A clinical
# answer (side effects, safety, candidacy) next to a patient's own case would read as advice.
PRACTICAL_TOPICS = ("faq_cost_insurance", "faq_clinic_info")
_SENTENCE_CONFIDENCE = 0.5


def _record(tracker: Tracker, reason: str) -> int | None:
    """Opens or updates the conversation's escalation; None if the database failed."""
    latest = tracker.latest_message or {}
    try:
        result = escalate(
            conversation_id=tracker.sender_id,
            channel=channel_of(tracker),
            reason=reason,
            message_id=latest.get("message_id"),
            text=latest.get("text"),
            guard_reason=latest.get("guard"),
            language=language_of(tracker),
        )
    except SQLAlchemyError:
        # Not lost: with no escalation_id slot set, the reconciler records it later.
        logger.exception("could not record the escalation (reason=%s); the reconciler will retry", reason)
        return None
    if result.urgency == "urgent" and (result.created or result.upgraded):
        logger.warning("URGENT escalation %s needs staff now (reason=%s)", result.escalation_id, reason)
    return result.escalation_id


def practical_questions(message: dict[str, Any]) -> list[str]:
    """Practical FAQ intents (cost, hours, place) of the message's sentences, in order, once each."""
    found: list[str] = []
    for sentence in (message.get("reading") or {}).get("sentence_intents") or []:
        name = sentence.get("name")
        if name in PRACTICAL_TOPICS and sentence.get("confidence", 0) >= _SENTENCE_CONFIDENCE and name not in found:
            found.append(name)
    return found


class ActionCrisisProtocol(Action):
    """Runs after Rasa has already sent the crisis resources (utter_crisis_resources).

    Opens or upgrades the conversation's escalation to urgent, tells the patient a staff member
    is being alerted, leaves any form, and hands the conversation to staff (the assistant then
    stays quiet except for another crisis, until staff hand it back). It never ends the
    conversation. The hand-off does not depend on this action: the hand-off policy set it with
    the crisis resources (addons/handoff_policy.py), so it holds when this action cannot run.
    """

    def name(self) -> str:
        return "action_crisis_protocol"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reason = "emergency" if tracker.get_slot("crisis_kind") == "emergency" else "crisis"
        escalation_id = _record(tracker, reason)
        dispatcher.utter_message(response="utter_crisis_staff_alerted")
        # Hand-off even when recording failed: the reconciler records the escalation later.
        events: list[EventType] = [SlotSet("handoff", True)]
        if escalation_id is not None:
            events.append(SlotSet("escalation_id", escalation_id))
        if tracker.active_loop.get("name"):
            # leave the form and forget its half-filled answers (a later booking starts afresh)
            events += [ActiveLoop(None), *(SlotSet(slot, None) for slot in FORM_SLOTS)]
        return events


class ActionSafetyCheckin(Action):
    """Records a non-urgent flag for staff after Rasa asked the safety check-in question.

    The check-in (utter_safety_checkin, sent by Rasa) is asked when a crisis is possible but not
    confirmed. Staff see the flag in the inbox; the conversation is not handed off, so the
    assistant goes on answering, and the patient's answer decides (addons/checkin_policy.py).
    """

    def name(self) -> str:
        return "action_safety_checkin"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        _record(tracker, "safety_checkin")  # None: the database failed; the question was still asked
        return []


class ActionEscalateToStaff(Action):
    """Hands a personal medical question, or a request for a person, to clinic staff.

    The conversation is then with staff: the assistant stays quiet until they hand it back.
    A booking form in progress is paused (its answers are kept for when the patient resumes).
    """

    def name(self) -> str:
        return "action_escalate_to_staff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = "asked_for_staff" if intent == "request_human" else "medical_question"
        escalation_id = _record(tracker, reason)
        if escalation_id is None:
            dispatcher.utter_message(response="utter_escalation_failed")
            return []
        response = "utter_escalated_human" if reason == "asked_for_staff" else "utter_escalated_medical"
        dispatcher.utter_message(response=response, after_hours=after_hours_note(language=tracker.get_slot("language")))
        for practical in practical_questions(tracker.latest_message or {}):
            dispatcher.utter_message(response=f"utter_{practical}")
        events: list[EventType] = [SlotSet("escalation_id", escalation_id), SlotSet("handoff", True)]
        if tracker.active_loop.get("name"):
            events.append(ActiveLoop(None))
        return events

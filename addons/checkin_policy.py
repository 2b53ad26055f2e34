"""Rasa glue: the safety check-in, asked when a crisis is possible but not confirmed.

When the safety layer marks a message ``guard.safety = "checkin"`` (addons/safety_guard.py),
this policy runs ``utter_safety_checkin`` (a warm question with 988 and 911, sent by Rasa
itself so it never depends on the action server) and ``action_safety_checkin`` (a non-urgent
flag for staff; no hand-off).
A message that goes to staff anyway (a personal medical question, a request for a person) is also
escalated right after the flag. The patient's answer decides the next turn:

* yes, or another uncertain message: ``utter_crisis_resources`` and ``action_crisis_protocol``;
* no: ``utter_checkin_thanks``, then what the earlier message asked for (its FAQ answer, the
  booking form, or escalation to staff);
* anything else: the other policies answer it as usual (a clear crisis goes to the crisis rule).

Priority 8: above the hand-off policy (7), so a check-in is asked even while staff hold the
conversation (the flag attaches the message for them), and above the rules.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

ASK = "utter_safety_checkin"
FLAG = "action_safety_checkin"
THANKS = "utter_checkin_thanks"
CRISIS_RESOURCES = "utter_crisis_resources"
CRISIS_PROTOCOL = "action_crisis_protocol"
ESCALATE = "action_escalate_to_staff"
BOOKING_FORM = "booking_form"
HANDOFF_SLOT = "handoff"
_YES = frozenset({"affirm"})
_NO = frozenset({"deny"})
_TO_STAFF = frozenset({"medical_question", "request_human"})


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class SafetyCheckinPolicy(Policy):
    """Predicts the check-in's steps; abstains everywhere else."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"priority": 8}

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        return self._resource  # nothing to learn: the behaviour is the check-in protocol

    def predict_action_probabilities(
        self, tracker: DialogueStateTracker, domain: Domain, rule_only_data: dict[str, Any] | None = None, **kwargs: Any
    ) -> PolicyPrediction:
        action = next_action(tracker, domain)
        probabilities = self._default_predictions(domain)
        if action is None:
            return self._prediction(probabilities)
        probabilities[domain.index_for_action(action)] = 1.0
        # Inside a form, the rule policy's "the form takes the message" prediction outranks every
        # prediction based on the message (the ensemble's no-user rule): the check-in competes there.
        return self._prediction(probabilities, is_no_user_prediction=True)


def next_action(tracker: DialogueStateTracker, domain: Domain) -> str | None:
    """The check-in's next action, or None to let the other policies decide."""
    latest = tracker.latest_action_name
    message = tracker.latest_message
    if message is None:
        return None
    intent = message.intent.get("name")
    flagged = (message.parse_data.get("guard") or {}).get("safety") == "checkin"
    answering = FLAG in _previous_turn_actions(tracker)
    if latest == ACTION_LISTEN_NAME:
        if intent == "crisis":
            return None  # the crisis rule
        if answering and (intent in _YES or flagged):
            return CRISIS_RESOURCES
        if flagged:
            return ASK
        if answering and intent in _NO and not tracker.get_slot(HANDOFF_SLOT):
            return THANKS
        return None
    if latest == ASK:
        return FLAG
    if latest == FLAG:
        # a message that goes to staff anyway (medical, a person) goes now; the answer still counts
        return ESCALATE if intent in _TO_STAFF and not tracker.get_slot(HANDOFF_SLOT) else ACTION_LISTEN_NAME
    if not answering:
        return None
    if latest == CRISIS_RESOURCES:
        return CRISIS_PROTOCOL
    if latest == CRISIS_PROTOCOL:
        return ACTION_LISTEN_NAME
    if latest == THANKS:
        return _resume(_earlier_intent(tracker), domain, tracker.active_loop_name)
    if latest == ESCALATE:
        return ACTION_LISTEN_NAME
    if (latest or "").startswith("utter_"):
        return tracker.active_loop_name or ACTION_LISTEN_NAME  # a form asks its question again
    return None


def _resume(intent: str | None, domain: Domain, active_loop: str | None) -> str:
    """What the message before the check-in asked for (inside a form: its question again)."""
    if intent in ("medical_question", "request_human"):
        return ESCALATE
    if intent == "book_consultation":
        return active_loop or BOOKING_FORM
    answer = f"utter_{intent}"
    if intent and intent.startswith("faq_") and answer in domain.action_names_or_texts:
        return answer
    return active_loop or ACTION_LISTEN_NAME


def _user_turns(tracker: DialogueStateTracker) -> list[int]:
    return [i for i, e in enumerate(tracker.events) if isinstance(e, UserUttered)]


def _previous_turn_actions(tracker: DialogueStateTracker) -> list[str]:
    """The actions that answered the message before the latest one."""
    turns = _user_turns(tracker)
    if len(turns) < 2:
        return []
    events = list(tracker.events)[turns[-2] + 1 : turns[-1]]
    return [e.action_name for e in events if isinstance(e, ActionExecuted) and e.action_name]


def _earlier_intent(tracker: DialogueStateTracker) -> str | None:
    """The intent of the message the check-in was asked about."""
    turns = _user_turns(tracker)
    if len(turns) < 2:
        return None
    return list(tracker.events)[turns[-2]].intent.get("name")

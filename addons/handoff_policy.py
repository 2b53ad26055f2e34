"""Rasa glue: while staff hold a conversation, the assistant stays quiet (except in a crisis).

After ``action_escalate_to_staff`` or ``action_crisis_protocol`` the ``handoff`` slot is true.
Each new patient message then runs ``action_handoff_hold`` (attaches it to the escalation so
staff see it) and nothing else. Crisis messages pass through to the crisis rule, and
``EXTERNAL_handoff_resolved`` (sent when staff resolve) to the hand-back rule. The policy
outranks the rule and memoization policies (priority 7), and abstains when the slot is unset.

A crisis hands the conversation to staff as soon as Rasa has sent the crisis resources: the
policy sets ``handoff`` with its next prediction (``action_crisis_protocol``), whichever policy
wins, so the hand-off holds even when that action cannot run (action server down or hung). The
escalation itself is then recorded by the reconciler (:mod:`clinic.staff.reconcile`), urgent.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SlotSet
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

HANDOFF_SLOT = "handoff"
HOLD_ACTION = "action_handoff_hold"
CRISIS_RESOURCES = "utter_crisis_resources"
PASS_THROUGH_INTENTS = frozenset({"crisis", "EXTERNAL_handoff_resolved"})


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class HandoffPolicy(Policy):
    """Predicts ``action_handoff_hold`` then ``action_listen`` for messages during a hand-off."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"priority": 7}

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        return self._resource  # nothing to learn: the behaviour is the hand-off contract

    def predict_action_probabilities(
        self, tracker: DialogueStateTracker, domain: Domain, rule_only_data: dict[str, Any] | None = None, **kwargs: Any
    ) -> PolicyPrediction:
        action = next_action(tracker)
        probabilities = self._default_predictions(domain)
        if action is not None:
            probabilities[domain.index_for_action(action)] = 1.0
        # mandatory events: applied even when another policy's prediction wins
        return self._prediction(probabilities, events=hand_off_events(tracker))


def next_action(tracker: DialogueStateTracker) -> str | None:
    """The hand-off's next action, or None to let the other policies decide."""
    if not tracker.get_slot(HANDOFF_SLOT):
        return None
    latest = tracker.latest_action_name
    if latest == HOLD_ACTION:
        return ACTION_LISTEN_NAME
    if latest != ACTION_LISTEN_NAME or tracker.latest_message is None:
        return None
    if tracker.latest_message.intent.get("name") in PASS_THROUGH_INTENTS:
        return None
    return HOLD_ACTION


def hand_off_events(tracker: DialogueStateTracker) -> list[Event]:
    """The hand-off, when the crisis resources were just sent and staff do not hold the conversation yet."""
    if tracker.latest_action_name != CRISIS_RESOURCES or tracker.get_slot(HANDOFF_SLOT):
        return []
    return [SlotSet(HANDOFF_SLOT, True)]

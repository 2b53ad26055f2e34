"""Rasa glue: while staff hold a conversation, the assistant stays quiet (except in a crisis).

After ``action_escalate_to_staff`` or ``action_crisis_protocol`` the ``handoff`` slot is true.
Each new patient message then runs ``action_handoff_hold`` (attaches it to the escalation so
staff see it) and nothing else. Crisis messages pass through to the crisis rule, and
``EXTERNAL_handoff_resolved`` (sent when staff resolve) to the hand-back rule. The policy
outranks the rule and memoization policies (priority 7), and abstains when the slot is unset.

No silence meanwhile: after holding a message, the policy predicts ``utter_handoff_ack`` ("Your
message is with our team; they'll reply ...", a domain response Rasa renders itself, so it needs no
action server) for the patient's first message since the hand-off began, then for at most one
message every ``HANDOFF_ACK_HOURS`` (:func:`ack_due`). Never when a staff reply is newer than the
patient's message, nor when the hold itself could not run (the patient was just told to call).

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
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.settings import handoff_ack_hours

HANDOFF_SLOT = "handoff"
HOLD_ACTION = "action_handoff_hold"
ACK_RESPONSE = "utter_handoff_ack"
# set on the bot events of staff replies (clinic.rasa_api, clinic.staff.transcript)
STAFF_METADATA_KEY = "clinic_staff"
CRISIS_RESOURCES = "utter_crisis_resources"
PASS_THROUGH_INTENTS = frozenset({"crisis", "EXTERNAL_handoff_resolved"})


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class HandoffPolicy(Policy):
    """Predicts ``action_handoff_hold``, the acknowledgement when due, then ``action_listen`` for
    messages during a hand-off. ``ack_hours`` in config.yml overrides ``HANDOFF_ACK_HOURS``."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"priority": 7, "ack_hours": None}

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain, **kwargs: Any) -> Resource:
        return self._resource  # nothing to learn: the behaviour is the hand-off contract

    def predict_action_probabilities(
        self, tracker: DialogueStateTracker, domain: Domain, rule_only_data: dict[str, Any] | None = None, **kwargs: Any
    ) -> PolicyPrediction:
        hours = self.config.get("ack_hours") or handoff_ack_hours()
        action = next_action(tracker, ack_seconds=float(hours) * 3600)
        if action == ACK_RESPONSE and ACK_RESPONSE not in domain.action_names_or_texts:
            action = ACTION_LISTEN_NAME  # a model trained before the acknowledgement existed
        probabilities = self._default_predictions(domain)
        if action is not None:
            probabilities[domain.index_for_action(action)] = 1.0
        # mandatory events: applied even when another policy's prediction wins
        return self._prediction(probabilities, events=hand_off_events(tracker))


def next_action(tracker: DialogueStateTracker, ack_seconds: float | None = None) -> str | None:
    """The hand-off's next action, or None to let the other policies decide.

    Args:
        ack_seconds: at most one acknowledgement in this many seconds (None: none at all).
    """
    if not tracker.get_slot(HANDOFF_SLOT):
        return None
    latest = tracker.latest_action_name
    if latest == HOLD_ACTION:
        return ACK_RESPONSE if ack_seconds is not None and ack_due(tracker, ack_seconds) else ACTION_LISTEN_NAME
    if latest == ACK_RESPONSE:
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


def ack_due(tracker: DialogueStateTracker, ack_seconds: float) -> bool:
    """Whether the message just held gets the acknowledgement.

    Due for the first patient message since the hand-off began (``handoff`` turned true) and then
    when the last acknowledgement is ``ack_seconds`` older than the message. Not due when a staff
    reply came after the message (staff answered it), or when the hold could not run: it sends
    nothing itself, so a bot message after it is the action-failure message telling the patient
    to call the clinic, which an acknowledgement would contradict.
    """
    events = list(tracker.events)
    began, last_ack, message, hold = _hand_off_marks(events)
    if message is None or hold is None or began is None:
        return False
    if any(isinstance(event, BotUttered) for event in events[hold + 1:]):
        return False
    if any(isinstance(event, BotUttered) and (event.metadata or {}).get(STAFF_METADATA_KEY)
           for event in events[message + 1:]):
        return False
    if last_ack is None or last_ack < began:
        return True
    return events[message].timestamp - events[last_ack].timestamp >= ack_seconds


def _hand_off_marks(events: list[Event]) -> tuple[int | None, int | None, int | None, int | None]:
    """Event indexes: where the hand-off began (``handoff`` turned true), the last acknowledgement,
    the patient's latest message and the latest hold."""
    began = last_ack = message = hold = None
    holding = False
    for index, event in enumerate(events):
        if isinstance(event, SlotSet) and event.key == HANDOFF_SLOT:
            if event.value and not holding:
                began = index
            holding = bool(event.value)
        elif isinstance(event, UserUttered):
            message = index
        elif isinstance(event, ActionExecuted) and event.action_name == ACK_RESPONSE:
            last_ack = index
        elif isinstance(event, ActionExecuted) and event.action_name == HOLD_ACTION:
            hold = index
    return began, last_ack, message, hold

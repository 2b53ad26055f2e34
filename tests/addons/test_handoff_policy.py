"""addons.handoff_policy: quiet while staff hold the conversation, except for a crisis."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from addons.handoff_policy import HandoffPolicy, next_action

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(PROJECT_DIR / "domain.yml")


def tracker(domain: Domain, *events, handoff: bool = True) -> DialogueStateTracker:
    start = [ActionExecuted("action_listen"), UserUttered("i'm on lithium, ok?", {"name": "medical_question"}),
             ActionExecuted("action_escalate_to_staff")]
    if handoff:
        start.append(SlotSet("handoff", True))
    return DialogueStateTracker.from_events("conv", [*start, ActionExecuted("action_listen"), *events],
                                            slots=domain.slots)


@pytest.mark.parametrize("intent", ["faq_cost_insurance", "greet", "thanks", "book_consultation",
                                    "medical_question", "request_human", "nlu_fallback"])
def test_every_message_is_held_for_staff(domain: Domain, intent: str) -> None:
    assert next_action(tracker(domain, UserUttered("...", {"name": intent}))) == "action_handoff_hold"


def test_after_holding_it_listens(domain: Domain) -> None:
    held = tracker(domain, UserUttered("hello?", {"name": "greet"}), ActionExecuted("action_handoff_hold"))

    assert next_action(held) == "action_listen"


@pytest.mark.parametrize("intent", ["crisis", "EXTERNAL_handoff_resolved"])
def test_a_crisis_and_the_hand_back_go_to_their_rules(domain: Domain, intent: str) -> None:
    assert next_action(tracker(domain, UserUttered("...", {"name": intent}))) is None


def test_a_crisis_sequence_is_not_interrupted(domain: Domain) -> None:
    mid_crisis = tracker(domain, UserUttered("...", {"name": "crisis"}), ActionExecuted("utter_crisis_resources"))

    assert next_action(mid_crisis) is None


def test_without_hand_off_it_abstains(domain: Domain) -> None:
    assert next_action(tracker(domain, UserUttered("cost?", {"name": "faq_cost_insurance"}), handoff=False)) is None


def test_after_hand_back_the_bot_answers_again(domain: Domain) -> None:
    back = tracker(domain, UserUttered("/EXTERNAL_handoff_resolved", {"name": "EXTERNAL_handoff_resolved"}),
                   ActionExecuted("action_handoff_resolved"), SlotSet("handoff", False),
                   ActionExecuted("action_listen"),
                   UserUttered("cost?", {"name": "faq_cost_insurance"}))

    assert next_action(back) is None


def test_the_prediction_outranks_the_rules(domain: Domain, tmp_path: Path) -> None:
    policy = HandoffPolicy.create(
        {**HandoffPolicy.get_default_config()}, LocalModelStorage(tmp_path), Resource("handoff"),
        ExecutionContext(GraphSchema({}), "test"),
    )

    prediction = policy.predict_action_probabilities(tracker(domain, UserUttered("hi", {"name": "greet"})), domain)

    assert domain.action_names_or_texts[prediction.max_confidence_index] == "action_handoff_hold"
    assert prediction.max_confidence == 1.0 and prediction.policy_priority > 6  # RulePolicy's is 6
    abstained = policy.predict_action_probabilities(tracker(domain, UserUttered("hi", {"name": "greet"}),
                                                            handoff=False), domain)
    assert abstained.max_confidence == 0.0


def _policy(tmp_path: Path) -> HandoffPolicy:
    return HandoffPolicy.create({**HandoffPolicy.get_default_config()}, LocalModelStorage(tmp_path),
                                Resource("handoff"), ExecutionContext(GraphSchema({}), "test"))


def test_the_crisis_resources_hand_the_conversation_to_staff_whoever_predicts_next(
        domain: Domain, tmp_path: Path) -> None:
    resources_sent = DialogueStateTracker.from_events("conv", [
        ActionExecuted("action_listen"), UserUttered("i want to end it all", {"name": "crisis"}),
        ActionExecuted("utter_crisis_resources"),
    ], slots=domain.slots)

    prediction = _policy(tmp_path).predict_action_probabilities(resources_sent, domain)

    # mandatory events: Rasa applies them even when the rule policy's action_crisis_protocol wins,
    # so the hand-off holds when that action cannot run (action server down or hung)
    assert prediction.events == [SlotSet("handoff", True)] and prediction.max_confidence == 0.0


@pytest.mark.parametrize("events", [
    [UserUttered("how much?", {"name": "faq_cost_insurance"})],
    [UserUttered("i want to end it all", {"name": "crisis"})],  # the resources are not sent yet
])
def test_nothing_is_set_before_the_crisis_resources_are_sent(domain: Domain, tmp_path: Path, events: list) -> None:
    tracker_ = DialogueStateTracker.from_events("conv", [ActionExecuted("action_listen"), *events], slots=domain.slots)

    assert _policy(tmp_path).predict_action_probabilities(tracker_, domain).events == []


def test_a_crisis_while_staff_hold_the_conversation_sets_nothing_again(domain: Domain, tmp_path: Path) -> None:
    held = tracker(domain, UserUttered("i want to end it all", {"name": "crisis"}),
                   ActionExecuted("utter_crisis_resources"))

    assert _policy(tmp_path).predict_action_probabilities(held, domain).events == []

"""addons.handoff_policy: quiet while staff hold the conversation, except for a crisis."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
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


# ------------------------------------------------------------------ the acknowledgement while staff hold it

HOUR = 3600.0
ACK_DOMAIN = """
version: "3.1"
intents: [greet, medical_question, crisis, EXTERNAL_handoff_resolved]
slots:
  handoff: {type: bool, initial_value: false, influence_conversation: false, mappings: [{type: custom}]}
  language: {type: categorical, values: [en, es], influence_conversation: false, mappings: [{type: custom}]}
actions: [action_escalate_to_staff, action_handoff_hold, action_handoff_resolved, action_crisis_protocol]
responses:
  utter_escalated_medical: [{text: "passed on"}]
  utter_handoff_ack: [{text: "Your message is with our team"}]
  utter_crisis_resources: [{text: "988"}]
"""


@pytest.fixture(scope="module")
def ack_domain() -> Domain:
    return Domain.from_yaml(ACK_DOMAIN)


def _held(domain: Domain, *messages: tuple[float, list], start: float = 0.0) -> DialogueStateTracker:
    """A hand-off begun at ``start`` (seconds), then each (time, events after the message) in turn."""
    events: list = [
        ActionExecuted("action_listen", timestamp=start),
        UserUttered("am i ok on lithium?", {"name": "medical_question"}, timestamp=start),
        ActionExecuted("action_escalate_to_staff", timestamp=start), SlotSet("handoff", True, timestamp=start),
        ActionExecuted("action_listen", timestamp=start),
    ]
    for at, after in messages:
        events += [UserUttered("hello?", {"name": "greet"}, timestamp=at), *after]
    return DialogueStateTracker.from_events("+13125550123", events, slots=domain.slots)


def _hold(at: float) -> list:
    return [ActionExecuted("action_handoff_hold", timestamp=at)]


def _acked(at: float) -> list:
    return [ActionExecuted("action_handoff_hold", timestamp=at), ActionExecuted("utter_handoff_ack", timestamp=at),
            BotUttered("Your message is with our team", timestamp=at), ActionExecuted("action_listen", timestamp=at)]


def test_the_first_message_after_the_hand_off_is_acknowledged(ack_domain: Domain) -> None:
    tracker_ = _held(ack_domain, (60.0, _hold(60.0)))

    assert next_action(tracker_, ack_seconds=4 * HOUR) == "utter_handoff_ack"


def test_after_the_acknowledgement_it_listens(ack_domain: Domain) -> None:
    tracker_ = _held(ack_domain, (60.0, _acked(60.0)[:3]))

    assert next_action(tracker_, ack_seconds=4 * HOUR) == "action_listen"


@pytest.mark.parametrize("later, expected", [(HOUR, "action_listen"), (3.9 * HOUR, "action_listen"),
                                             (4 * HOUR, "utter_handoff_ack"), (30 * HOUR, "utter_handoff_ack")])
def test_then_at_most_one_every_few_hours(ack_domain: Domain, later: float, expected: str) -> None:
    tracker_ = _held(ack_domain, (60.0, _acked(60.0)), (60.0 + later, _hold(60.0 + later)))

    assert next_action(tracker_, ack_seconds=4 * HOUR) == expected


def test_never_when_a_staff_reply_is_newer_than_the_message(ack_domain: Domain) -> None:
    staff_reply = BotUttered("Hi, Dana here", metadata={"clinic_staff": "Dana Ruiz"}, timestamp=61.0)
    tracker_ = _held(ack_domain, (60.0, [staff_reply, *_hold(62.0)]))

    assert next_action(tracker_, ack_seconds=4 * HOUR) == "action_listen"


def test_not_when_the_hold_could_not_run(ack_domain: Domain) -> None:
    """The action server is down: the patient was just told to call; no contradicting 'it's with our team'."""
    call_us = BotUttered("I couldn't reach our team's inbox just now. Please call us", timestamp=60.0)
    tracker_ = _held(ack_domain, (60.0, [*_hold(60.0), call_us]))

    assert next_action(tracker_, ack_seconds=4 * HOUR) == "action_listen"


def test_a_new_hand_off_is_acknowledged_afresh(ack_domain: Domain) -> None:
    handed_back = [*_acked(60.0)[:3], SlotSet("handoff", False, timestamp=70.0), ActionExecuted("action_listen")]
    tracker_ = _held(ack_domain, (60.0, handed_back), (80.0, [ActionExecuted("action_escalate_to_staff"),
                                                           SlotSet("handoff", True, timestamp=80.0),
                                                           ActionExecuted("action_listen")]),
                     (90.0, _hold(90.0)))

    assert next_action(tracker_, ack_seconds=4 * HOUR) == "utter_handoff_ack"


def test_a_crisis_during_the_hand_off_keeps_its_protocol(ack_domain: Domain) -> None:
    tracker_ = _held(ack_domain, (60.0, _acked(60.0)))
    tracker_.update(UserUttered("i want to end it all", {"name": "crisis"}, timestamp=70.0))

    assert next_action(tracker_, ack_seconds=4 * HOUR) is None  # the crisis rule answers
    tracker_.update(ActionExecuted("utter_crisis_resources"))
    assert next_action(tracker_, ack_seconds=4 * HOUR) is None


def test_the_policy_predicts_the_acknowledgement_from_the_domain(ack_domain: Domain, tmp_path: Path) -> None:
    policy = HandoffPolicy.create({**HandoffPolicy.get_default_config(), "ack_hours": 4}, LocalModelStorage(tmp_path),
                                  Resource("handoff"), ExecutionContext(GraphSchema({}), "test"))

    prediction = policy.predict_action_probabilities(_held(ack_domain, (60.0, _hold(60.0))), ack_domain)

    assert ack_domain.action_names_or_texts[prediction.max_confidence_index] == "utter_handoff_ack"
    assert prediction.max_confidence == 1.0 and prediction.policy_priority > 6


def test_a_model_without_the_acknowledgement_just_listens(tmp_path: Path) -> None:
    older = Domain.from_yaml(ACK_DOMAIN.replace('  utter_handoff_ack: [{text: "Your message is with our team"}]\n', ""))

    prediction = _policy(tmp_path).predict_action_probabilities(_held(older, (60.0, _hold(60.0))), older)

    assert older.action_names_or_texts[prediction.max_confidence_index] == "action_listen"


def test_the_interval_comes_from_the_environment(ack_domain: Domain, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_ACK_HOURS", "0.5")
    tracker_ = _held(ack_domain, (60.0, _acked(60.0)), (60.0 + HOUR, _hold(60.0 + HOUR)))

    prediction = _policy(tmp_path).predict_action_probabilities(tracker_, ack_domain)

    assert ack_domain.action_names_or_texts[prediction.max_confidence_index] == "utter_handoff_ack"

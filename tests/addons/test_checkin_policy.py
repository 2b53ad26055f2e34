"""addons.checkin_policy: the safety check-in's question, and what the answer leads to."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from addons.checkin_policy import SafetyCheckinPolicy, next_action
from clinic.settings import PROJECT_DIR

CHECKIN = {"safety": "checkin"}


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(PROJECT_DIR / "domain.yml")


def said(text: str, intent: str, guard: dict | None = None) -> UserUttered:
    return UserUttered(text, {"name": intent}, parse_data={"intent": {"name": intent}, "guard": guard or {}})


def tracker(domain: Domain, *events) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("conv", [ActionExecuted("action_listen"), *events], slots=domain.slots)


def asked(first_intent: str = "faq_cost_insurance") -> list:
    """A conversation in which the check-in was just asked about a message of ``first_intent``."""
    return [
        said("how much is it, not sure it matters", first_intent, CHECKIN),
        ActionExecuted("utter_safety_checkin"),
        ActionExecuted("action_safety_checkin"),
        ActionExecuted("action_listen"),
    ]


def test_an_uncertain_message_gets_the_question_then_the_flag_then_listens(domain: Domain) -> None:
    first = said("not sure it matters", "faq_cost_insurance", CHECKIN)

    assert next_action(tracker(domain, first), domain) == "utter_safety_checkin"
    assert (
        next_action(tracker(domain, first, ActionExecuted("utter_safety_checkin")), domain) == "action_safety_checkin"
    )
    assert (
        next_action(
            tracker(domain, first, ActionExecuted("utter_safety_checkin"), ActionExecuted("action_safety_checkin")),
            domain,
        )
        == "action_listen"
    )


@pytest.mark.parametrize(
    "answer",
    [said("yes", "affirm"), said("kinda idk", "faq_how_fast", CHECKIN)],
    ids=["yes", "another-uncertain-message"],
)
def test_yes_leads_to_the_crisis_protocol(domain: Domain, answer: UserUttered) -> None:
    events = [*asked(), answer]

    assert next_action(tracker(domain, *events), domain) == "utter_crisis_resources"
    events.append(ActionExecuted("utter_crisis_resources"))
    assert next_action(tracker(domain, *events), domain) == "action_crisis_protocol"
    events.append(ActionExecuted("action_crisis_protocol"))
    assert next_action(tracker(domain, *events), domain) == "action_listen"


@pytest.mark.parametrize(
    ("first_intent", "resumed"),
    [
        ("faq_cost_insurance", "utter_faq_cost_insurance"),
        ("book_consultation", "booking_form"),
        ("medical_question", "action_escalate_to_staff"),
        ("nlu_fallback", "action_listen"),
    ],
)
def test_no_resumes_what_the_earlier_message_asked(domain: Domain, first_intent: str, resumed: str) -> None:
    events = [*asked(first_intent), said("no", "deny")]

    assert next_action(tracker(domain, *events), domain) == "utter_checkin_thanks"
    events.append(ActionExecuted("utter_checkin_thanks"))
    assert next_action(tracker(domain, *events), domain) == resumed


def test_inside_a_form_the_check_in_outranks_the_form_taking_the_message(domain: Domain, tmp_path) -> None:
    policy = SafetyCheckinPolicy.create(
        SafetyCheckinPolicy.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("checkin"),
        ExecutionContext(GraphSchema({})),
    )
    in_form = tracker(
        domain,
        ActiveLoop("booking_form"),
        ActionExecuted("booking_form"),
        ActionExecuted("action_listen"),
        said("whatever, wont be here by then", "nlu_fallback", CHECKIN),
    )

    prediction = policy.predict_action_probabilities(in_form, domain)

    assert prediction.is_no_user_prediction  # competes with the rule policy's form prediction
    assert domain.action_names_or_texts[prediction.max_confidence_index] == "utter_safety_checkin"
    quiet = policy.predict_action_probabilities(tracker(domain, said("hi", "greet")), domain)
    assert not quiet.is_no_user_prediction and quiet.max_confidence == 0


def test_no_inside_a_form_asks_the_form_question_again(domain: Domain) -> None:
    events = [
        ActiveLoop("booking_form"),
        *asked("nlu_fallback"),
        said("no", "deny"),
        ActionExecuted("utter_checkin_thanks"),
    ]

    assert next_action(tracker(domain, *events), domain) == "booking_form"


def test_after_the_resumed_answer_it_listens(domain: Domain) -> None:
    events = [
        *asked(),
        said("no", "deny"),
        ActionExecuted("utter_checkin_thanks"),
        ActionExecuted("utter_faq_cost_insurance"),
    ]

    assert next_action(tracker(domain, *events), domain) == "action_listen"


def test_a_clear_crisis_answer_is_left_to_the_crisis_rule(domain: Domain) -> None:
    assert next_action(tracker(domain, *asked(), said("yes i want to die", "crisis")), domain) is None


def test_another_question_is_answered_as_usual(domain: Domain) -> None:
    assert next_action(tracker(domain, *asked(), said("where are you located", "faq_clinic_info")), domain) is None


def test_no_while_staff_hold_the_conversation_is_left_to_the_hand_off(domain: Domain) -> None:
    events = [SlotSet("handoff", True), *asked(), said("no", "deny")]

    assert next_action(tracker(domain, *events), domain) is None


def test_ordinary_turns_are_left_alone(domain: Domain) -> None:
    assert next_action(tracker(domain, said("hi", "greet")), domain) is None
    assert next_action(tracker(domain, said("no", "deny")), domain) is None

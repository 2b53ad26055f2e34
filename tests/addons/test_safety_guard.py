"""addons.safety_guard: the guard as the last NLU component (intent override and verdict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from addons.safety_guard import GUARD_KEY, SafetyGuard


@pytest.fixture
def component(guard, tmp_path: Path) -> SafetyGuard:  # ``guard``: built once per session
    return SafetyGuard.create(
        {}, LocalModelStorage(tmp_path), Resource("safety_guard"), ExecutionContext(GraphSchema({}))
    )


def classified(text: str, *ranking: tuple[str, float]) -> Message:
    """A message as the classifier left it: its intent is the first of ``ranking``."""
    intents = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    return Message(data={TEXT: text, INTENT: intents[0], INTENT_RANKING_KEY: intents, ENTITIES: []})


def entities(message: Message) -> dict[str, Any]:
    return {e["entity"]: e["value"] for e in message.get(ENTITIES)}


def test_a_crisis_overrides_any_classification(component: SafetyGuard) -> None:
    message = classified("how fast does it work? i want to kill myself", ("faq_how_fast", 0.8), ("crisis", 0.1))

    component.process([message])

    assert message.get(INTENT) == {"name": "crisis", "confidence": 1.0}
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0] == {"name": "crisis", "confidence": 1.0}
    assert [r["name"] for r in ranking] == ["crisis", "faq_how_fast"]  # no duplicate crisis
    assert entities(message) == {"crisis_kind": "self_harm", "language": "en"}
    verdict = message.get(GUARD_KEY)
    assert (verdict["category"], verdict["rule"], verdict["classifier_intent"]) == ("crisis", "self_harm", "faq_how_fast")
    assert "kill myself" in verdict["matched"]


def test_an_emergency_becomes_a_crisis_turn_of_the_emergency_kind(component: SafetyGuard) -> None:
    message = classified("my husband is having a seizure", ("faq_side_effects", 0.6))

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert entities(message) == {"crisis_kind": "emergency", "language": "en"}


def test_spanish_crisis_sets_the_language_entity(component: SafetyGuard) -> None:
    message = classified("ya no quiero vivir", ("greet", 0.5))

    component.process([message])

    assert entities(message) == {"crisis_kind": "self_harm", "language": "es"}


def test_a_personal_medical_question_goes_to_staff(component: SafetyGuard) -> None:
    message = classified("I'm on lexapro, can I do this?", ("faq_candidacy", 0.7))

    component.process([message])

    assert message.get(INTENT) == {"name": "medical_question", "confidence": 1.0}
    assert message.get(GUARD_KEY)["rule"] == "named_medicine"
    assert entities(message) == {"language": "en"}  # no crisis_kind: not a crisis


def test_a_medical_verdict_never_downgrades_a_crisis(component: SafetyGuard) -> None:
    message = classified("I'm on lexapro and I don't see the point anymore", ("crisis", 0.9))

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert entities(message)["crisis_kind"] == "self_harm"


@pytest.mark.parametrize("text", ["OPERATOR", "representitive pls", "this bot is useless, just get me a human"])
def test_a_plain_request_for_a_person_goes_to_staff(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("affirm", 0.48), ("request_human", 0.2))

    component.process([message])

    assert message.get(INTENT) == {"name": "request_human", "confidence": 1.0}
    assert message.get(GUARD_KEY)["category"] == "human"
    assert "crisis_kind" not in entities(message)


@pytest.mark.parametrize("classifier", ["crisis", "medical_question"])
def test_a_request_for_a_person_never_downgrades_a_safety_intent(component: SafetyGuard, classifier: str) -> None:
    message = classified("get me a real person now", (classifier, 0.7), ("request_human", 0.3))

    component.process([message])

    assert message.get(INTENT)["name"] == classifier


def test_a_classifier_crisis_stands_when_the_guard_is_silent(component: SafetyGuard) -> None:
    message = classified("everything feels pointless lately", ("crisis", 0.7), ("greet", 0.1))

    component.process([message])

    assert message.get(INTENT) == {"name": "crisis", "confidence": 0.7}
    assert entities(message) == {"crisis_kind": "self_harm", "language": "en"}
    assert message.get(GUARD_KEY)["category"] is None


def test_a_classifier_crisis_resting_on_an_idiom_is_vetoed(component: SafetyGuard) -> None:
    message = classified("this price is killing me", ("crisis", 0.6), ("faq_cost_insurance", 0.3))

    component.process([message])

    assert message.get(INTENT)["name"] == "faq_cost_insurance"
    assert "crisis" not in [r["name"] for r in message.get(INTENT_RANKING_KEY)]
    assert message.get(GUARD_KEY)["vetoed"]["classifier_intent"] == "crisis"
    assert entities(message) == {"language": "en"}  # no crisis_kind: not a crisis


def test_a_vetoed_crisis_with_nothing_else_ranked_falls_back(component: SafetyGuard) -> None:
    message = classified("this price is killing me", ("crisis", 0.9))

    component.process([message])

    assert message.get(INTENT) == {"name": "nlu_fallback", "confidence": 1.0}


def test_an_ordinary_question_is_left_alone(component: SafetyGuard) -> None:
    message = classified("what are your hours?", ("faq_clinic_info", 0.9), ("faq_consultation", 0.05))

    component.process([message])

    assert message.get(INTENT) == {"name": "faq_clinic_info", "confidence": 0.9}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["faq_clinic_info", "faq_consultation"]
    verdict = message.get(GUARD_KEY)
    assert verdict["category"] is None and verdict["classifier_intent"] == "faq_clinic_info"


def test_the_verdict_is_part_of_the_parse_output(component: SafetyGuard) -> None:
    message = classified("I want to kill myself", ("greet", 0.9))

    component.process([message])

    assert GUARD_KEY in message.as_dict(only_output_properties=True)


def test_a_batch_is_processed_message_by_message(component: SafetyGuard) -> None:
    messages = [classified("hi", ("greet", 0.9)), classified("i want to die", ("greet", 0.9))]

    component.process(messages)

    assert [m.get(INTENT)["name"] for m in messages] == ["greet", "crisis"]


def test_a_message_without_text_is_handled(component: SafetyGuard) -> None:
    message = Message(data={INTENT: {"name": "nlu_fallback", "confidence": 1.0}})

    component.process([message])

    assert message.get(INTENT)["name"] == "nlu_fallback"
    assert message.get(GUARD_KEY)["category"] is None


def test_a_spanish_question_sets_the_language_without_a_crisis(component: SafetyGuard) -> None:
    message = classified("¿Cuánto cuesta una consulta para la depresión?", ("nlu_fallback", 1.0))

    component.process([message])

    assert message.get(INTENT)["name"] == "nlu_fallback"
    assert entities(message) == {"language": "es"}

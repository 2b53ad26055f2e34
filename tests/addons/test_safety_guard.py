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
from clinic.reading.questions import is_question, not_happening_now


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


def with_reading(
    message: Message, verdict: str | None, kind: str = "self_harm", piece: int = 0, sentences: list[str] | None = None
) -> Message:
    """A message as the sentence reader left it, with a risk-model verdict."""
    score = {"confident": 0.95, "uncertain": 0.3, None: 0.01}[verdict]
    risk = {
        "crisis": score if kind == "self_harm" else 0.0,
        "emergency": score if kind == "emergency" else 0.0,
        "piece": piece,
        "kind": kind,
        "verdict": verdict,
    }
    message.set("reading", {"sentences": sentences or [], "risk": risk})
    return message


def test_a_crisis_overrides_any_classification(component: SafetyGuard) -> None:
    message = classified("how fast does it work? i want to kill myself", ("faq_how_fast", 0.8), ("crisis", 0.1))

    component.process([message])

    assert message.get(INTENT) == {"name": "crisis", "confidence": 1.0}
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0] == {"name": "crisis", "confidence": 1.0}
    assert [r["name"] for r in ranking] == ["crisis", "faq_how_fast"]  # no duplicate crisis
    assert entities(message) == {"crisis_kind": "self_harm", "language": "en"}
    verdict = message.get(GUARD_KEY)
    assert (verdict["category"], verdict["rule"], verdict["classifier_intent"]) == (
        "crisis",
        "self_harm",
        "faq_how_fast",
    )
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
    message = with_reading(classified("I'm on lexapro and I don't see the point anymore", ("crisis", 0.9)), "uncertain")

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


def test_a_request_for_a_person_never_downgrades_a_medical_question(component: SafetyGuard) -> None:
    message = classified("get me a real person now", ("medical_question", 0.7), ("request_human", 0.3))

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"


def test_a_medical_question_the_classifier_read_as_crisis_gets_a_check_in_and_goes_to_staff(
    component: SafetyGuard,
) -> None:
    message = classified("ive been seeing things since my infusion on tuesday", ("crisis", 0.6), ("greet", 0.1))

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "medical_question"  # escalated in the same turn


def test_a_request_for_a_person_the_classifier_read_as_crisis_gets_a_check_in(component: SafetyGuard) -> None:
    message = classified("get me a real person now", ("crisis", 0.7), ("request_human", 0.3))

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "request_human"


def test_a_sure_classifier_and_an_uncertain_risk_reading_agree_on_a_crisis(component: SafetyGuard) -> None:
    message = with_reading(classified("i dont know what to do anymore", ("crisis", 0.95)), "uncertain")

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"


def test_a_classifier_crisis_no_rule_confirms_asks_a_safety_check_in(component: SafetyGuard) -> None:
    message = classified("everything feels pointless lately", ("crisis", 0.7), ("faq_how_fast", 0.4))

    component.process([message])

    verdict = message.get(GUARD_KEY)
    assert verdict["safety"] == "checkin"
    assert verdict["category"] is None
    # the check-in resumes the best non-crisis intent after a "no"
    assert message.get(INTENT)["name"] == "faq_how_fast"
    assert entities(message) == {"language": "en"}


def test_a_crisis_sentence_inside_a_cost_question_decides(component: SafetyGuard) -> None:
    text = "how much is the infusion. honestly i want to kill myself anyway"
    message = with_reading(
        classified(text, ("faq_cost_insurance", 0.9)),
        None,
        sentences=["how much is the infusion.", "honestly i want to kill myself anyway"],
    )

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert message.get(GUARD_KEY)["rule"] == "self_harm"


def test_a_confident_risk_reading_an_intent_model_agrees_with_starts_the_protocol(component: SafetyGuard) -> None:
    message = with_reading(classified("not sure ill still be around for the consult", ("crisis", 0.93)), "confident")

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    verdict = message.get(GUARD_KEY)
    assert (verdict["category"], verdict["rule"]) == ("crisis", "risk_model")
    assert verdict["risk"]["crisis"] == 0.95  # the record shows the score that decided
    assert entities(message)["crisis_kind"] == "self_harm"


def test_a_confident_risky_sentence_the_sentence_model_reads_as_crisis_starts_the_protocol(
    component: SafetyGuard,
) -> None:
    message = with_reading(
        classified("book me in. wont be around much longer", ("book_consultation", 0.9)),
        "confident",
        piece=2,
        sentences=["book me in.", "wont be around much longer"],
    )
    message.get("reading")["sentence_intents"] = [
        {"name": "book_consultation", "confidence": 0.9},
        {"name": "crisis", "confidence": 0.95},
    ]

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert message.get(GUARD_KEY)["sentence"] is None  # no lexicon rule: the model decided


def test_a_risky_sentence_the_sentence_model_is_unsure_of_asks_the_check_in(component: SafetyGuard) -> None:
    message = with_reading(
        classified("how long is the drive home? i just want to plan my week", ("faq_aftercare", 0.9)),
        "confident",
        piece=2,
        sentences=["how long is the drive home?", "i just want to plan my week"],
    )
    message.get("reading")["sentence_intents"] = [
        {"name": "faq_aftercare", "confidence": 0.95},
        {"name": "crisis", "confidence": 0.8},
    ]

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "faq_aftercare"


def test_a_confident_risk_reading_alone_asks_the_check_in(component: SafetyGuard) -> None:
    message = with_reading(
        classified("what should i bring? i just want to plan my week", ("faq_preparation", 0.7)), "confident"
    )

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "faq_preparation"


def test_a_confident_emergency_reading_is_an_emergency(component: SafetyGuard) -> None:
    message = with_reading(
        classified("my dad is shaking all over on the floor", ("crisis", 0.95)), "confident", kind="emergency"
    )

    component.process([message])

    assert entities(message)["crisis_kind"] == "emergency"


def test_an_uncertain_risk_reading_asks_a_check_in(component: SafetyGuard) -> None:
    message = with_reading(classified("i dont know what to do anymore", ("faq_aftercare", 0.5)), "uncertain")

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "faq_aftercare"


@pytest.mark.parametrize(
    "ranking",
    [(("book_consultation", 0.92),), (("medical_question", 0.92),), (("request_human", 0.9),)],
    ids=["confident-booking", "confident-medical", "confident-person"],
)
def test_an_uncertain_reading_is_outweighed(component: SafetyGuard, ranking) -> None:
    message = with_reading(classified("quiero agendar una consulta", *ranking), "uncertain")

    component.process([message])

    assert "safety" not in message.get(GUARD_KEY)


@pytest.mark.parametrize("intent", ["medical_question", "request_human"])
def test_an_uncertain_reading_on_a_turn_for_staff_is_asked_too(component: SafetyGuard, intent: str) -> None:
    message = with_reading(classified("can someone call me, i cant keep doing this", (intent, 0.5)), "uncertain")

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == intent  # escalated to staff after the question


@pytest.mark.parametrize("pleasantry", ["goodbye", "thanks", "greet", "affirm"])
def test_a_sure_pleasantry_does_not_outweigh_an_uncertain_reading(component: SafetyGuard, pleasantry: str) -> None:
    message = with_reading(classified("i have it all worked out now", (pleasantry, 0.95)), "uncertain")

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"


def test_an_uncertain_reading_resting_on_an_idiom_is_outweighed(component: SafetyGuard) -> None:
    message = with_reading(classified("my mom will kill me if i miss it", ("out_of_scope", 0.5)), "uncertain")

    component.process([message])

    assert "safety" not in message.get(GUARD_KEY)


def test_a_sentence_the_sentence_model_is_sure_of_outweighs_an_uncertain_reading(component: SafetyGuard) -> None:
    message = with_reading(
        classified("ok. how does it even work on the brain", ("faq_how_it_works", 0.6)),
        "uncertain",
        piece=2,
        sentences=["ok.", "how does it even work on the brain"],
    )
    message.get("reading")["sentence_intents"] = [
        {"name": "affirm", "confidence": 0.9},
        {"name": "faq_how_it_works", "confidence": 0.85},
    ]

    component.process([message])

    assert "safety" not in message.get(GUARD_KEY)


def test_an_uncertain_sentence_is_asked_about_whatever_the_classifier_says(component: SafetyGuard) -> None:
    message = with_reading(
        classified("book me for tuesday. not sure it matters", ("book_consultation", 0.95)),
        "uncertain",
        piece=2,
        sentences=["book me for tuesday.", "not sure it matters"],
    )

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"


def preamble(text: str, sentences: list[str], question_intent: str, classifier: str) -> Message:
    message = classified(text, (classifier, 0.7))
    intents = [{"name": "medical_question", "confidence": 0.6}, {"name": question_intent, "confidence": 0.8}]
    message.set("reading", {"sentences": sentences, "risk": {"verdict": None, "piece": 0}, "sentence_intents": intents})
    return message


@pytest.mark.parametrize(
    ("sentences", "question_intent"),
    [
        (
            ["I've been on antidepressants for 15 years and tried 8 of them.", "How long does an infusion take?"],
            "faq_treatment_process",
        ),
        (
            ["I've had anxiety my whole life and my heart races a lot.", "Do people usually get nauseous during it?"],
            "faq_side_effects",
        ),
        (["My back pain has been awful since surgery.", "Do I need to fast before an infusion?"], "faq_preparation"),
        (["Been through five antidepressants and TMS.", "What does a normal course of infusions look like?"],
         "faq_treatment_process"),
        (["My bipolar makes new places hard.", "Can my sister sit in on the consult?"], "faq_consultation"),
        (["I'm a youth minister and parents at church say this is legal drug use.",
          "How do clinics make sure nobody gets hooked?"], "faq_addiction"),
        (["I'm 81 and my grandson drives me everywhere.", "I was wondering how long the first visit lasts."],
         "faq_consultation"),
    ],
    ids=["logistics", "about-people-in-general", "first-person-logistics", "normal-before-a-noun",
         "a-relative-as-company", "a-thing-called-drug-use", "a-question-told-as-a-statement"],
)
def test_a_personal_preamble_before_a_general_question_is_not_medical(
    component: SafetyGuard, sentences: list[str], question_intent: str
) -> None:
    message = preamble(" ".join(sentences), sentences, question_intent, "medical_question")

    component.process([message])

    assert message.get(INTENT)["name"] == question_intent
    assert message.get(GUARD_KEY)["context_only"]


@pytest.mark.parametrize(
    ("sentences", "question_intent"),
    [
        (["Since my last session I've had nightmares for days.", "Is this a side effect?"], "faq_side_effects"),
        (["I have a heart condition and high blood pressure.", "Is ketamine safe?"], "faq_safety"),
        (["My son has epilepsy.", "Would it help him?"], "faq_conditions_treated"),
        (["I take adderall every morning for work.", "Could I still go on with it between infusions?"],
         "faq_treatment_process"),
        (["On zoloft 100mg since spring.", "Must I pause them the day of an infusion?"], "faq_preparation"),
        (["Nursing my 2 month old.", "How long after an infusion until I can breastfeed again?"], "faq_aftercare"),
        (["My hands shake since the last infusion.", "Is that normal for most people?"], "faq_side_effects"),
    ],
    ids=["what-the-writer-described", "clinical-topic-after-own-condition", "a-relative", "own-medicine-kept",
         "own-medicine-paused", "breastfeeding", "own-reaction-asked-about-people"],
)
def test_a_question_that_depends_on_the_preamble_stays_medical(
    component: SafetyGuard, sentences: list[str], question_intent: str
) -> None:
    message = preamble(" ".join(sentences), sentences, question_intent, question_intent)

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"


def test_a_general_question_said_to_be_the_writers_own_stays_medical(component: SafetyGuard) -> None:
    sentences = ["Is ketamine ok for people with a defibrillator?", "Asking for myself, mine went in last spring."]
    message = classified(" ".join(sentences), ("faq_safety", 0.7))
    intents = [{"name": "faq_safety", "confidence": 0.8}, {"name": "medical_question", "confidence": 0.6}]
    message.set("reading", {"sentences": sentences, "risk": {"verdict": None, "piece": 0}, "sentence_intents": intents})

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"


@pytest.mark.parametrize(
    "text",
    ["Can someone overdose on ketamine at a clinic?", "I passed out at a blood draw once lol"],
)
def test_an_emergency_word_in_a_general_question_or_a_memory_is_not_an_emergency(
    component: SafetyGuard, text: str
) -> None:
    message = classified(text, ("faq_safety", 0.6))

    component.process([message])

    assert message.get(INTENT)["name"] == "faq_safety"
    assert message.get(GUARD_KEY)["not_now"]


def test_a_reaction_to_a_treatment_that_is_over_goes_to_staff_without_911(component: SafetyGuard) -> None:
    message = classified(
        "had chest pain for a bit in my session two weeks ago, then it went away. do i mention it at the next one?",
        ("faq_preparation", 0.8),
    )

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"
    assert message.get(GUARD_KEY)["rule"] == "past_reaction"


@pytest.mark.parametrize(
    "text", ["my dad passed out and wont wake up", "i just passed out again", "can my son overdose on this? he took 6"]
)
def test_an_emergency_now_or_about_someone_present_stays_one(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("faq_safety", 0.6))

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert entities(message)["crisis_kind"] == "emergency"


def test_a_question_about_the_writers_own_case_stays_medical(component: SafetyGuard) -> None:
    text = "I've been on lexapro for 15 years. Is ketamine safe for me?"
    sentences = ["I've been on lexapro for 15 years.", "Is ketamine safe for me?"]
    message = classified(text, ("faq_safety", 0.7))
    message.set("reading", {"sentences": sentences, "risk": {"verdict": None, "piece": 0}})

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"


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


@pytest.mark.parametrize("text", ["ok", "Maria Lopez", "555-0142"])
def test_a_message_that_does_not_tell_the_language_keeps_the_conversations(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("affirm", 0.9))

    component.process([message])

    assert "language" not in entities(message)


@pytest.mark.parametrize(("media", "intent"), [(1, "medical_question"), (0, "out_of_scope"), (None, "out_of_scope")])
def test_a_symptom_written_with_a_picture_is_the_patients_own(component: SafetyGuard, media, intent: str) -> None:
    message = classified("what's this rash?", ("out_of_scope", 0.55))
    if media is not None:
        message.set("metadata", {"media": media})

    component.process([message])

    assert message.get(INTENT)["name"] == intent


def test_a_picture_alone_does_not_make_a_question_medical(component: SafetyGuard) -> None:
    message = classified("what's this?", ("out_of_scope", 0.48))
    message.set("metadata", {"media": 1})

    component.process([message])

    assert message.get(INTENT)["name"] == "out_of_scope"


def test_the_pages_language_sets_the_conversations_when_the_text_does_not_tell(component: SafetyGuard) -> None:
    message = classified("ok", ("affirm", 0.9))
    message.set("metadata", {"language": "es"})

    component.process([message])

    assert entities(message) == {"language": "es"}


def test_what_the_patient_writes_outweighs_the_pages_language(component: SafetyGuard) -> None:
    message = classified("how much does an infusion cost?", ("faq_cost_insurance", 0.9))
    message.set("metadata", {"language": "es"})

    component.process([message])

    assert entities(message) == {"language": "en"}


def test_a_sentence_the_sentence_model_reads_as_crisis_asks_a_check_in(component: SafetyGuard) -> None:
    message = with_reading(
        classified("do you take tricare? some days i see why guys check out early", ("faq_cost_insurance", 0.85)),
        None,
        sentences=["do you take tricare?", "some days i see why guys check out early"],
    )
    message.get("reading")["sentence_intents"] = [
        {"name": "faq_cost_insurance", "confidence": 0.9},
        {"name": "crisis", "confidence": 0.7},
    ]

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "faq_cost_insurance"  # answered after a "no"


def test_a_sentence_the_assistant_cannot_read_goes_to_a_person_with_a_check_in(component: SafetyGuard) -> None:
    message = with_reading(classified("magkano po ang infusion", ("faq_cost_insurance", 0.7)), None)
    message.get("reading")["unreadable"] = 0

    component.process([message])

    assert message.get(INTENT)["name"] == "request_human"
    assert message.get(GUARD_KEY)["rule"] == "unreadable_language"
    assert message.get(GUARD_KEY)["safety"] == "checkin"


def test_an_unreadable_sentence_never_downgrades_a_medical_question(component: SafetyGuard) -> None:
    text = "I take lithium, is ketamine safe for me? salamat po talaga sa inyo"
    message = with_reading(classified(text, ("faq_safety", 0.6)), None)
    message.get("reading")["unreadable"] = 1

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"
    assert message.get(GUARD_KEY)["safety"] == "checkin"


def test_a_message_the_classifier_cannot_place_between_medical_and_another_goes_to_staff(
    component: SafetyGuard,
) -> None:
    text = "big fella, 6 foot 5, would they give me more than most folks get"
    message = classified(text, ("nlu_fallback", 0.3), ("faq_cost_insurance", 0.41), ("medical_question", 0.4))

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"
    assert message.get(GUARD_KEY)["in_doubt"] == "medical_question"


def test_a_fallback_whose_best_reading_is_a_middling_crisis_asks_the_check_in(component: SafetyGuard) -> None:
    message = classified("tired of all of it tbh", ("nlu_fallback", 0.3), ("crisis", 0.55), ("out_of_scope", 0.4))

    component.process([with_reading(message, None)])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(INTENT)["name"] == "out_of_scope"


def test_a_low_classifier_crisis_with_no_other_sign_takes_the_next_reading(component: SafetyGuard) -> None:
    message = classified("my tractor died again lol", ("nlu_fallback", 0.3), ("crisis", 0.42), ("out_of_scope", 0.4))

    component.process([with_reading(message, None)])

    verdict = message.get(GUARD_KEY)
    assert "safety" not in verdict
    assert verdict["vetoed"]["classifier_intent"] == "crisis"
    assert message.get(INTENT)["name"] == "out_of_scope"
    assert "crisis_kind" not in entities(message)


@pytest.mark.parametrize("risk", ["uncertain", "confident"])
def test_a_low_classifier_crisis_the_risk_model_shares_is_still_asked(component: SafetyGuard, risk: str) -> None:
    message = classified("i just feel done", ("nlu_fallback", 0.3), ("crisis", 0.42), ("out_of_scope", 0.4))

    component.process([with_reading(message, risk)])

    assert message.get(GUARD_KEY)["safety"] == "checkin"


def test_a_fallback_with_no_medical_reading_near_the_top_stays_a_fallback(component: SafetyGuard) -> None:
    message = classified("zxq blorp", ("nlu_fallback", 0.3), ("greet", 0.2), ("faq_cost_insurance", 0.15),
                         ("medical_question", 0.14))

    component.process([with_reading(message, None)])

    assert message.get(INTENT)["name"] == "nlu_fallback"
    assert "safety" not in message.get(GUARD_KEY)


@pytest.mark.parametrize(("sentence", "question"), [
    ("btw I take tramadol for my knee, would that be a problem with ketamine", True),
    ("and is it fine to keep taking my zoloft", True),
    ("also, can they drive me home after", True),
    ("I've had anxiety since college, tried a lot of things", False),
    ("my dad is on warfarin, he takes it at night", False),
], ids=["last clause", "joining word", "joining word and comma", "statement", "statement with a comma"])
def test_a_question_is_told_by_its_words_not_only_its_mark(sentence: str, question: bool) -> None:
    assert is_question(sentence) is question


def test_a_personal_question_asked_after_a_practical_one_goes_to_staff(component: SafetyGuard) -> None:
    text = "where do I park? btw I take tramadol for my knee, would that be a problem with ketamine"
    message = with_reading(classified(text, ("faq_clinic_info", 0.95), ("medical_question", 0.04)), None,
                           sentences=["where do I park?", text.split("? ", 1)[1]])
    message.get("reading")["sentence_intents"] = [{"name": "faq_clinic_info", "confidence": 0.99},
                                                  {"name": "medical_question", "confidence": 0.8}]

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"
    assert "context_only" not in message.get(GUARD_KEY)


@pytest.mark.parametrize(("piece", "not_now"), [
    ("can someone overdose on ketamine?", True),
    ("I passed out at a blood draw once", True),
    ("the baby isn't breathing, can anyone help?", False),
    ("someone collapsed in the hallway just now, is anyone coming?", False),
], ids=["general question", "memory", "plea for help", "plea, just now"])
def test_a_plea_is_happening_now_a_general_question_is_not(piece: str, not_now: bool) -> None:
    assert not_happening_now(piece) is not_now


def test_suicide_named_as_the_subject_of_a_general_question_is_answered(component: SafetyGuard) -> None:
    text = "do infusions work for folks with suicidal ideation?"
    message = with_reading(classified(text, ("faq_conditions_treated", 0.9), ("crisis", 0.05)), None)

    component.process([message])

    assert message.get(INTENT)["name"] == "faq_conditions_treated"
    assert message.get(GUARD_KEY)["crisis_topic"] == ["suicidal", "suicidal ideation"]
    assert message.get(GUARD_KEY).get("safety") is None


def test_a_classifier_crisis_on_such_a_question_takes_its_next_reading(component: SafetyGuard) -> None:
    text = "is esketamine approved for suicidal depression"
    message = with_reading(classified(text, ("crisis", 0.55), ("faq_esketamine", 0.4)), None)

    component.process([message])

    assert message.get(INTENT)["name"] == "faq_esketamine"


@pytest.mark.parametrize(
    "text",
    [
        "do infusions help suicidal thoughts? asking because i have them",
        "my brother is suicidal. do infusions help folks with suicidal thoughts?",
    ],
)
def test_suicide_that_is_the_writers_or_someone_elses_stays_a_crisis(component: SafetyGuard, text: str) -> None:
    message = with_reading(classified(text, ("faq_conditions_treated", 0.9)), None)

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert "crisis_topic" not in message.get(GUARD_KEY)


@pytest.mark.parametrize(
    ("text", "emergency"),
    [
        ("is there any risk of a seizure during an infusion?", False),  # something that could happen
        ("can u have a seizure from the infusions?", False),
        ("can someone overdose on ketamine? he took a bunch an hour ago and now hes acting weird", True),  # now
    ],
)
def test_an_emergency_asked_about_is_not_one_happening_now(component: SafetyGuard, text: str, emergency: bool) -> None:
    message = with_reading(classified(text, ("faq_side_effects", 0.9)), None)

    component.process([message])

    assert (message.get(INTENT)["name"] == "crisis") is emergency


def test_an_uncertain_emergency_reading_is_asked_about_however_sure_the_classifier(component: SafetyGuard) -> None:
    message = with_reading(classified("grandpa cant lift his left arm and his words come out wrong",
                                      ("out_of_scope", 0.95)), "uncertain", kind="emergency")

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"


def test_an_uncertain_crisis_reading_is_outweighed_by_a_sure_classifier(component: SafetyGuard) -> None:
    message = with_reading(classified("what are the hours on saturday", ("faq_clinic_info", 0.95)), "uncertain")

    component.process([message])

    assert message.get(GUARD_KEY).get("safety") is None



@pytest.mark.parametrize(
    "text",
    ["Tengo epilepsia, me puede dar convulsiones la ketamina?", "I have epilepsy, could ketamine give me a seizure?"],
)
def test_asking_whether_it_could_bring_on_an_emergency_is_a_medical_question(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("faq_side_effects", 0.6))

    component.process([message])

    assert message.get(INTENT)["name"] == "medical_question"
    assert message.get(GUARD_KEY)["category"] == "medical"


@pytest.mark.parametrize(
    "text",
    [
        "my son swallowed a bunch of my tylenol, will it cause liver damage?",
        "could it give him a seizure? he is seizing now",
    ],
)
def test_an_emergency_told_before_asking_about_a_risk_stays_one(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("faq_side_effects", 0.6))

    component.process([message])

    assert message.get(INTENT)["name"] == "crisis"
    assert entities(message)["crisis_kind"] == "emergency"


@pytest.mark.parametrize(
    "text",
    [
        "up on the roof of my apartment building rn. idk",
        "sitting on the top level of the hospital garage right now",
        "not sure why im even texting a clinic tbh",
        "ok. i chose the day. does the first infusion hurt",
        "signed my will and named my sister as beneficiary this week. what time do you open",
        "take me off the infusion list, i wont be needing them past sunday",
        "finally tied up all my loose ends. anything open thursday?",
        "do you guys know if the 988 line works by text, i might need it tonight",
    ],
)
def test_a_writer_up_high_now_or_reaching_out_unexplained_is_asked(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("out_of_scope", 0.7))

    component.process([message])

    assert message.get(GUARD_KEY)["safety"] == "checkin"
    assert message.get(GUARD_KEY)["concern"]
    assert message.get(INTENT)["name"] == "out_of_scope"  # resumed after a "no"


@pytest.mark.parametrize(
    "text",
    [
        "parked on the top level of the garage now, which elevator goes to your office?",
        "on the roof fixing shingles rn, call me back in an hour",
        "not sure why im texting instead of calling lol, how much is a consult?",
        "we finally set the date for the wedding! can i get infusions before it?",
        "my attorney told me to update my will someday, anyway do you take aetna?",
        "my grandpa signed his will yesterday, can he still book a consult?",
        "tying up loose ends at the office before my trip, can i book for the 20th?",
        "what does 988 stand for, my teacher mentioned it in health class",
    ],
)
def test_a_visitor_or_worker_up_high_is_not_asked(component: SafetyGuard, text: str) -> None:
    message = classified(text, ("faq_clinic_info", 0.7))

    component.process([message])

    assert "concern" not in message.get(GUARD_KEY)
    assert message.get(GUARD_KEY).get("safety") != "checkin"


def test_a_complaint_that_nobody_calls_back_is_not_asked_about(component: SafetyGuard) -> None:
    message = with_reading(
        classified("left two voicemails and nobody called me back, this is ridiculous", ("request_human", 0.6)),
        "uncertain",
    )

    component.process([message])

    assert message.get(GUARD_KEY).get("safety") != "checkin"

"""addons.sentence_reader: trained with the model, it writes the reading the safety layer uses."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from addons.sentence_reader import READING_KEY, SentenceReader, risk_label, sentence_units

EXAMPLES = {
    "crisis": [f"i want to die {w}" for w in ("tonight", "now", "so bad", "today", "honestly", "already")]
    + [f"i cant go on {w}" for w in ("anymore", "like this", "much longer", "any more", "tbh", "really")],
    "faq_preparation": [
        f"how do i {w} for an infusion" for w in ("prepare", "get ready", "plan", "dress", "eat", "prep")
    ]
    + [f"what should i {w} before my infusion" for w in ("bring", "wear", "eat", "do", "avoid", "know")],
    "thanks": [
        "thanks",
        "thank you",
        "thanks so much",
        "thx",
        "ty",
        "thank you so much",
        "appreciate it",
        "many thanks",
        "thanks a lot",
        "cheers",
        "ok thanks",
        "great thanks",
    ],
    "book_consultation": [
        f"i want to book {w}" for w in ("a consult", "an appointment", "tuesday", "monday", "a visit", "next week")
    ]
    + [f"can i schedule {w}" for w in ("a consult", "a visit", "for friday", "soon", "this week", "an appointment")],
}
EMERGENCIES = [f"my {who} collapsed and is not breathing" for who in ("dad", "mom", "wife", "son", "friend", "husband")]


def training_data() -> TrainingData:
    messages = [Message(data={TEXT: text, INTENT: intent}) for intent, texts in EXAMPLES.items() for text in texts]
    messages += [
        Message(data={TEXT: t, INTENT: "crisis", "metadata": {"intent": {"risk": "emergency"}}}) for t in EMERGENCIES
    ]
    return TrainingData(training_examples=messages)


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> SentenceReader:
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("sentence_reader")
    context = ExecutionContext(GraphSchema({}))
    trainer = SentenceReader.create({}, storage, resource, context)
    trainer.train(training_data())
    return SentenceReader.load({}, storage, resource, context)  # as the server loads it


def classified(text: str, intent: str, confidence: float = 0.6) -> Message:
    best = {"name": intent, "confidence": confidence}
    return Message(data={TEXT: text, INTENT: best, INTENT_RANKING_KEY: [best]})


def test_emergencies_are_labelled_by_their_mark_or_the_guard(guard) -> None:
    marked = Message(data={TEXT: "help", INTENT: "crisis", "metadata": {"intent": {"risk": "emergency"}}})
    unmarked = Message(data={TEXT: "my husband is having a seizure", INTENT: "crisis"})
    plain = Message(data={TEXT: "i want to die", INTENT: "crisis"})

    assert [risk_label(m, guard) for m in (marked, unmarked, plain)] == ["emergency", "emergency", "crisis"]
    assert risk_label(Message(data={TEXT: "hi", INTENT: "greet"}), guard) == "none"


def test_the_sentences_of_everyday_examples_are_learnt_with_their_intent() -> None:
    """A scene-setting statement is known as part of a question, so it does not read as a crisis
    for lack of anything else it resembles; a crisis example's sentences are not learnt alone."""
    units, labels = sentence_units(
        ["Money is tight right now. What does it cost?", "i cant go on. whats your address", "hi"],
        ["faq_cost_insurance", "crisis", "greet"],
    )

    assert list(zip(units, labels))[3:] == [
        ("Money is tight right now.", "faq_cost_insurance"),
        ("What does it cost?", "faq_cost_insurance"),
    ]
    assert units[:3] == ["Money is tight right now. What does it cost?", "i cant go on. whats your address", "hi"]


def test_the_reading_holds_sentences_risk_and_thresholds(reader: SentenceReader) -> None:
    message = classified("how do i prepare for an infusion? i want to die tonight", "faq_preparation")

    reader.process([message])

    reading = message.get(READING_KEY)
    assert reading["sentences"] == ["how do i prepare for an infusion?", "i want to die tonight"]
    assert reading["risk"]["piece"] == 2  # the second sentence is the riskiest piece
    assert reading["risk"]["kind"] == "self_harm"
    assert set(reading["thresholds"]) == {"uncertain", "confident"}


def test_small_talk_around_a_question_is_answered_by_the_question(reader: SentenceReader) -> None:
    message = classified("thanks! how do i prepare for an infusion?", "thanks")

    reader.process([message])

    assert message.get(INTENT)["name"] == "faq_preparation"
    assert message.get(INTENT_RANKING_KEY)[0]["name"] == "faq_preparation"


def test_a_question_is_not_replaced_by_another_sentence(reader: SentenceReader) -> None:
    message = classified("can i schedule a consult? thanks", "book_consultation")

    reader.process([message])

    assert message.get(INTENT)["name"] == "book_consultation"


def test_a_request_to_book_beside_a_general_question_is_a_booking(reader: SentenceReader) -> None:
    message = classified("what should i bring before my infusion? i want to book next week", "faq_preparation", 0.9)

    reader.process([message])

    assert message.get(INTENT)["name"] == "book_consultation"


def test_a_sentence_that_names_no_booking_does_not_make_a_question_a_booking(reader: SentenceReader) -> None:
    message = classified("what should i bring before my infusion? can i come this week", "faq_preparation", 0.9)
    message.set(TEXT, "what should i bring before my infusion? can i come this week")

    reader.process([message])

    assert message.get(INTENT)["name"] == "faq_preparation"


def test_a_general_question_beside_small_talk_stays_the_question(reader: SentenceReader) -> None:
    message = classified("how do i prepare for an infusion? thanks so much", "faq_preparation", 0.9)

    reader.process([message])

    assert message.get(INTENT)["name"] == "faq_preparation"


def test_a_one_sentence_message_has_no_sentence_reading(reader: SentenceReader) -> None:
    message = classified("my dad collapsed and is not breathing", "faq_preparation")

    reader.process([message])

    reading = message.get(READING_KEY)
    assert reading["sentences"] == []
    assert reading["risk"]["kind"] == "emergency"
    assert "sentence_intents" not in reading


def test_a_known_idiom_does_not_make_a_message_risky(reader: SentenceReader) -> None:
    idiom, plain = classified("i want to die laughing today", "thanks"), classified("i want to die today", "thanks")

    reader.process([idiom, plain])

    assert idiom.get(READING_KEY)["risk"]["verdict"] is None
    assert idiom.get(READING_KEY)["risk"]["idioms"] == ["die laughing"]
    assert plain.get(READING_KEY)["risk"]["verdict"] == "confident"


def test_an_idiom_beside_a_crisis_phrase_is_read_with_it(reader: SentenceReader) -> None:
    message = classified("i could die laughing but honestly i want to die tonight", "thanks")

    reader.process([message])

    assert message.get(READING_KEY)["risk"]["verdict"] is not None
    assert "idioms" not in message.get(READING_KEY)["risk"]


def test_a_sentence_in_a_language_it_cannot_read_is_named(reader: SentenceReader) -> None:
    message = classified("how do i book. pagod na pagod na po ako talaga", "book_consultation")

    reader.process([message])

    assert message.get(READING_KEY)["unreadable"] == 1

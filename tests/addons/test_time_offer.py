"""addons.time_offer: a day or time offered as a bare answer is marked, so a rule can book it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from addons.time_offer import TIME_OFFER, TimeOffer


@pytest.fixture
def component(tmp_path: Path) -> TimeOffer:
    return TimeOffer.create({}, LocalModelStorage(tmp_path), Resource("time_offer"), ExecutionContext(GraphSchema({})))


def _marked(component: TimeOffer, text: str, intent: str = "inform") -> bool:
    message = Message(data={TEXT: text, INTENT: {"name": intent, "confidence": 0.9}, ENTITIES: []})
    component.process([message])
    return any(e["entity"] == TIME_OFFER for e in message.get(ENTITIES))


@pytest.mark.parametrize(
    "text",
    ["saturday 10am open?", "is 8am monday available", "the 3rd at 2:30 in person", "tmrw after 4",
     "el jueves a las 9", "dec 12 works"],
)
def test_an_answer_naming_a_day_or_time_is_marked(component: TimeOffer, text: str) -> None:
    assert _marked(component, text)


@pytest.mark.parametrize("text", ["Maria Lopez", "555-0142", "prefiero por video", "good morning", "the 2nd one"])
def test_an_answer_naming_no_time_is_not(component: TimeOffer, text: str) -> None:
    assert not _marked(component, text)


@pytest.mark.parametrize("intent", ["crisis", "medical_question", "book_consultation", "faq_clinic_info"])
def test_only_a_bare_answer_is_marked(component: TimeOffer, intent: str) -> None:
    """A crisis or a medical question naming a day keeps its own course."""
    assert not _marked(component, "saturday at 10", intent)


def test_other_entities_are_kept(component: TimeOffer) -> None:
    email = {"entity": "email", "value": "a@example.com", "start": 0, "end": 13}
    message = Message(data={TEXT: "friday at 3", INTENT: {"name": "inform", "confidence": 0.9}, ENTITIES: [email]})
    component.process([message])
    assert message.get(ENTITIES)[0] == email and message.get(ENTITIES)[1]["entity"] == TIME_OFFER

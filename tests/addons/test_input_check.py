"""addons.input_check: messages without words go to the polite fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from addons.input_check import FALLBACK, InputCheck, has_words

WORDLESS = {
    "empty": "",
    "spaces": "   ",
    "newlines and tabs": "\n\t\r\n",
    "emoji": "🙂🙂🙏",
    "punctuation": "?!...,;:",
    "controls": "\x00\x01\x02\x7f\x1b",
    "replacement characters": "\ufffd\ufffd\ufffd ab",
    "mostly binary": "\x00\x01\x02\x03\x04\x05\x06\x07ab",
    "private use": "\ue000\ue001\ue002",
}
WORDY = {
    "english": "hi",
    "a number": "3",
    "spanish": "¿Cuánto cuesta?",
    "chinese": "氯胺酮治疗多少钱",
    "emoji and a word": "🙂 thanks",
    "a little junk": "how much does it cost \x00",
    "markup": "<b>hello</b>",
}


@pytest.mark.parametrize("text", WORDLESS.values(), ids=WORDLESS.keys())
def test_wordless_text(text: str) -> None:
    assert has_words(text) is False


@pytest.mark.parametrize("text", WORDY.values(), ids=WORDY.keys())
def test_text_with_words(text: str) -> None:
    assert has_words(text) is True


@pytest.fixture
def component(tmp_path: Path) -> InputCheck:
    return InputCheck.create(
        {}, LocalModelStorage(tmp_path), Resource("input_check"), ExecutionContext(GraphSchema({}))
    )


def _message(text: str) -> Message:
    guess = {"name": "greet", "confidence": 0.4}
    return Message(data={TEXT: text, INTENT: guess, INTENT_RANKING_KEY: [guess]})


def test_a_wordless_message_becomes_the_fallback(component: InputCheck) -> None:
    message = _message("🙂🙂")

    component.process([message])

    assert message.get(INTENT) == {"name": FALLBACK, "confidence": 1.0}
    assert message.get(INTENT_RANKING_KEY) == [{"name": FALLBACK, "confidence": 1.0}]
    assert message.get(TEXT) == "🙂🙂"  # the text itself is kept


def test_a_message_with_words_is_left_alone(component: InputCheck) -> None:
    message = _message("hello")

    component.process([message])

    assert message.get(INTENT) == {"name": "greet", "confidence": 0.4}


def test_a_message_without_text_becomes_the_fallback(component: InputCheck) -> None:
    message = Message(data={})

    component.process([message])

    assert message.get(INTENT)["name"] == FALLBACK

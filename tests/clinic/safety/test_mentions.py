"""clinic.safety.mentions: crisis words that only name what a general question is about."""

from __future__ import annotations

import pytest

from clinic.reading.sentences import split_sentences
from clinic.safety.mentions import crisis_words_as_a_topic


def topic(guard, text: str) -> list[str]:
    sentences = split_sentences(text)
    return crisis_words_as_a_topic(guard, text, sentences if len(sentences) > 1 else [])


@pytest.mark.parametrize(
    "text",
    [
        "do infusions work for folks with suicidal ideation?",
        "is esketamine approved for suicidal depression",
        "what does ketamine do for suicidal thoughts in general? it's for a class project",
        "la ketamina sirve para las ideas suicidas?",
    ],
)
def test_a_general_question_about_suicide_names_a_topic(guard, text: str) -> None:
    assert topic(guard, text)


@pytest.mark.parametrize(
    "text",
    [
        "i've had suicidal thoughts for months, do infusions help?",  # the writer's own
        "do infusions help suicidal thoughts? i get them every night",  # said to be theirs after
        "does ketamine help people like me who are suicidal?",  # the writer among them
        "my daughter is suicidal. do infusions help suicidal teens?",  # someone with them
        "can ketamine help people who want to end their lives?",  # not a clinical name
        "are people suicidal tonight after an infusion?",  # now
        "suicidal thoughts again.",  # not a question
    ],
)
def test_anything_said_of_someone_is_not_a_topic(guard, text: str) -> None:
    assert topic(guard, text) == []

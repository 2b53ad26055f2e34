"""clinic.reading.sentences: the pieces a message is read by."""

from __future__ import annotations

import pytest

from clinic.reading.sentences import MAX_SENTENCES, split_sentences


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("how much is an infusion", ["how much is an infusion"]),
        ("thanks! how do I prepare?", ["thanks!", "how do I prepare?"]),
        ("how much is it? ok book me in", ["how much is it?", "ok book me in"]),
        ("what time do u open?im free tmrw", ["what time do u open?", "im free tmrw"]),
        ("first line\nsecond line", ["first line", "second line"]),
        (
            "i have a question about cost, honestly i wont be around by then",
            ["i have a question about cost", "honestly i wont be around by then"],
        ),
        ("what?? really?! ok", ["what??", "really?!", "ok"]),
        ("  ", []),
        ("", []),
    ],
)
def test_a_message_is_split_into_its_sentences_and_clauses(text: str, pieces: list[str]) -> None:
    assert split_sentences(text) == pieces


def test_punctuation_alone_joins_the_piece_before() -> None:
    assert split_sentences("ok. !!!") == ["ok. !!!"]


def test_a_comma_inside_a_list_does_not_split() -> None:
    assert split_sentences("do you take aetna, cigna or blue cross") == ["do you take aetna, cigna or blue cross"]


def test_a_very_long_message_keeps_its_first_sentences() -> None:
    text = " ".join(f"sentence number {i}." for i in range(50))

    assert len(split_sentences(text)) == MAX_SENTENCES

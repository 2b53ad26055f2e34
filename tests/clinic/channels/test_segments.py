"""clinic.channels.segments: SMS segments counted by the encoding the text is really sent in."""

from __future__ import annotations

import pytest

from clinic.channels.segments import GSM_7, UCS_2, Segments, count_segments, encoding_of


@pytest.mark.parametrize(
    "text",
    ["Book a free consultation?", "¿Agendamos una consulta? ¡Claro! Mañana, señor.", "Café, niño, Ü, ß, Ø, Å, @£$¥",
     "Price: €450 [IV] {x} ~ ^ | \\", "line one\nline two"],
)
def test_gsm_alphabet_text_is_gsm_7(text: str) -> None:
    # ¿ ¡ é ñ are in GSM 03.38: Spanish without á, í, ó or ú still goes as GSM-7.
    assert encoding_of(text) == GSM_7


@pytest.mark.parametrize("text", ["La sesión", "día", "más", "ningún", "Está", "\u201cquoted\u201d", "it\u2019s",
                                  "ok \U0001F44D"])
def test_one_character_outside_the_alphabet_makes_the_text_ucs_2(text: str) -> None:
    assert encoding_of(text) == UCS_2


@pytest.mark.parametrize(
    ("length", "count"),
    [(0, 0), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm_7_segments_hold_160_then_153(length: int, count: int) -> None:
    assert count_segments("a" * length) == Segments(count, GSM_7, length)


@pytest.mark.parametrize(
    ("length", "count"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs_2_segments_hold_70_then_67(length: int, count: int) -> None:
    text = "á" * length

    assert count_segments(text) == Segments(count, UCS_2, length)


def test_a_spanish_answer_of_200_characters_is_3_segments_not_2() -> None:
    # The same length in GSM-7 would be 2 segments: the accent is what costs the third.
    text = ("La consulta dura unos 30 minutos y es gratis. " * 5)[:199] + "á"

    assert count_segments(text) == Segments(3, UCS_2, 200)
    assert count_segments(text[:-1] + "a").count == 2


def test_extension_characters_count_twice() -> None:
    assert count_segments("€" * 80) == Segments(1, GSM_7, 160)
    assert count_segments("€" * 81) == Segments(2, GSM_7, 162)


def test_an_extension_character_is_not_split_across_parts() -> None:
    # 152 septets, then an escape and "€" that cannot share the first part's last septet.
    text = "a" * 152 + "€" + "b" * 10

    assert count_segments(text) == Segments(2, GSM_7, 164)
    # 306 septets would fill two parts exactly, but the escape moves "€" on: 152 | 2 + 151 | 1.
    assert count_segments("a" * 152 + "€" + "b" * 152).count == 3


def test_an_emoji_is_two_ucs_2_units_and_never_split() -> None:
    emoji = "\U0001F600"

    assert count_segments(emoji * 35) == Segments(1, UCS_2, 70)
    assert count_segments(emoji * 36) == Segments(2, UCS_2, 72)
    # 134 units would fill two parts exactly, but the pair moves on whole: 66 | 2 + 65 | 1.
    assert count_segments("á" * 66 + emoji + "á" * 66).count == 3

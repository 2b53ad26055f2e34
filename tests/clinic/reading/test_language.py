"""clinic.reading.language: the conversation's language is set only by messages that tell it."""

from __future__ import annotations

import pytest

from clinic.reading.language import KnownWords, detect_language, requested_language


@pytest.mark.parametrize(
    "text",
    [
        "hola",
        "gracias!",
        "cuanto cuesta el infusion?",
        "Buenas tardes, ¿tienen citas el sábado?",
        "mi mama toma pastillas para la presion, puede hacerlo?",
        "q precio tiene la consulta porfa",
        "donde quedan?",
        "hay parqueo?",
        "si",
        "my dad is having chest pain ahorita, q hago",
    ],
)
def test_spanish_and_code_switching_read_as_spanish(text: str) -> None:
    assert detect_language(text) == "es"


@pytest.mark.parametrize(
    "text",
    [
        "how much is an infusion?",
        "thanks",
        "can i book for tuesday",
        "is it safe if you have anxiety",
        "everything feels pointless lately",
    ],
)
def test_english_reads_as_english(text: str) -> None:
    assert detect_language(text) == "en"


@pytest.mark.parametrize(
    "text", ["ok", "no", "Maria Lopez", "555-0142", "kms", "", "👍", "lol", "de7kq2", "k2el9x", "q4mi8z"]
)
def test_short_or_neutral_messages_keep_the_current_language(text: str) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("en español por favor", "es"),
        ("Do you speak Spanish?", "es"),
        ("¿hablan español?", "es"),
        ("english please", "en"),
        ("¿me puede contestar en inglés?", "en"),
        ("espanol", "es"),
    ],
)
def test_an_explicit_request_switches_the_language(text: str, language: str) -> None:
    assert requested_language(text) == language
    assert detect_language(text) == language


def test_asking_whether_staff_speak_spanish_is_not_a_request_to_switch() -> None:
    assert requested_language("is there anyone at the front desk who speaks spanish for my mom") is None


# a few words of the training data; English comes from spaCy's lookup tables, whose grammar words
# ("me", "the") the training data always holds
TRAINING_WORDS = ["cuanto", "cuesta", "la", "consulta", "quiero", "agendar", "una", "cita", "ketamine"]
TRAINING_WORDS += ["me", "the", "how"]


@pytest.mark.parametrize(
    "text",
    [
        "Magkano po ang bayad para sa unang session?",  # Tagalog
        "Bao nhieu tien mot lan truyen thuoc vay?",  # Vietnamese without its accents
        "Mwen bezwen pale ak yon moun souple",  # Haitian Creole
    ],
)
def test_a_sentence_in_another_language_is_unreadable(text: str) -> None:
    assert KnownWords(TRAINING_WORDS).unreadable([text]) == 0


@pytest.mark.parametrize(
    "sentences",
    [
        ["how much does the first infusion cost"],
        ["cuanto cuesta la consulta?", "quiero agendar una cita"],
        ["thx!! u guys r the best", "Dr Nguyen Thi Lan referred me"],
        ["sige po"],  # too short to tell
        ["ok", "555 0142 2026"],
    ],
)
def test_english_spanish_shorthand_and_names_are_readable(sentences: list[str]) -> None:
    assert KnownWords([*TRAINING_WORDS, "thx", "u", "guys", "r", "dr"]).unreadable(sentences) is None


@pytest.mark.parametrize(
    "text",
    [
        "Nguyen Thi Minh Khai",
        "oluwaseun adebayo okafor",
        "Xochitl Quetzalli Tlapalli",
        "oluwaseun.okafor@yahoo.com",
        "Nguyen Thi Minh Khai, nguyen.t.m.khai@hotmail.com",
    ],
)
def test_a_name_or_an_email_address_alone_is_not_an_unreadable_sentence(text: str) -> None:
    # the booking form asks for the patient's full name and e-mail address
    assert KnownWords(TRAINING_WORDS).unreadable([text]) is None


def test_the_unreadable_sentence_is_the_one_named() -> None:
    sentences = ["hi, how do I book", "pagod na pagod na po ako talaga"]

    assert KnownWords(TRAINING_WORDS).unreadable(sentences) == 1

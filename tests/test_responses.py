"""The answers in domain.yml, filled with the real clinic.yml values.

FAQ answers: one web and one SMS (``channel: twilio``) variation per topic and language, web <=
700 and SMS <= 320 characters, Flesch-Kincaid grade <= 9 (English) and Fernández-Huerta >= 60
(Spanish), health topics defer to "our provider" / "nuestro equipo médico", and every answer ends
with a next step. Every SMS text takes at most 3 segments by its real encoding (UCS-2 for Spanish
with accents). Crisis resources: 988, 741741 and 911 where they belong. Spanish: every English
variation has a Spanish one for the same channel, with the same placeholders, button payloads and
emergency numbers.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
import textstat
import yaml
from textstat.textstat import textstatistics

from clinic.booking.timeparse import parse_preferred_time
from clinic.channels.segments import count_segments
from clinic.insights.intents import faq_intents
from clinic.profile import load_profile
from tests.faq_topics import FAQ_TOPICS

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text(encoding="utf-8"))
RESPONSES: dict[str, list[dict[str, Any]]] = DOMAIN["responses"]
NOT_HEALTH_TOPICS = {"cost_insurance", "clinic_info"}
WEB_MAX, SMS_MAX, GRADE_MAX = 700, 320, 9.0
# Fernández-Huerta (the Spanish Flesch reading ease): 60 and above is "normal" to "easy" text,
# about what the English grade limit asks for.
SPANISH_EASE_MIN = 60.0
# Values the actions pass when they send a response (not from clinic.yml).
RUNTIME_VALUES = {"after_hours": "", "patient_name": "Ana", "preferred_time_display": "Tuesday, April 21 at 2 PM",
                  "phone_display": "(312) 555-0123",
                  "staff_reply_time": "during business hours, next from tomorrow (Wednesday) at 10:30 AM"}
# The booking actions' values, long ones (SMS variants must still fit in 320 characters).
RUNTIME_VALUES |= {"patient_name": "Maria Gonzalez-Ramirez",
                   "preferred_time_display": "Wednesday, September 30 at 10:30 AM CDT",
                   "old_time_display": "Wednesday, September 23 at 11:30 AM CDT", "booking_code": "K7M4QX",
                   "email_display": "maria.gonzalez.ramirez@example.com", "visit_reason_display": "chronic pain",
                   "patient_type_display": "returning patient", "reminders_display": "yes",
                   "blocked_day": "Wednesday, December 30", "horizon_days": "60"}
# The same values as the actions word them in a Spanish conversation.
SPANISH_RUNTIME_VALUES = RUNTIME_VALUES | {
    "preferred_time_display": "miércoles 30 de septiembre, 10:30 a. m. CDT",
    "old_time_display": "miércoles 23 de septiembre, 11:30 a. m. CDT", "visit_reason_display": "dolor crónico",
    "blocked_day": "miércoles 30 de diciembre",
    "staff_reply_time": "en horario de atención (a partir de mañana miércoles a las 10:30 a. m.)",
}


def _spanish_reader() -> textstatistics:
    # Its own textstat instance: textstat.set_lang("es") on the shared one would change the
    # syllable counts of the English grade checks in the same run.
    reader = textstatistics()
    reader.set_lang("es")
    return reader


SPANISH_TEXT = _spanish_reader()


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    return load_profile().answer_values() | RUNTIME_VALUES


@pytest.fixture(scope="module")
def spanish_values() -> dict[str, str]:
    return load_profile().answer_values("es") | SPANISH_RUNTIME_VALUES


def fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def _condition(v: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in v.get("condition") or []}


def language_of(v: dict[str, Any]) -> str:
    return _condition(v).get("language", "en")


def variation(topic: str, channel: str | None, language: str = "en") -> dict[str, Any]:
    [found] = [v for v in RESPONSES[f"utter_faq_{topic}"] if v.get("channel") == channel and language_of(v) == language]
    return found


def last_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip())[-1]


def test_the_topics_are_the_policys_sixteen() -> None:
    assert len(FAQ_TOPICS) == 16
    assert set(faq_intents()) == {f"faq_{t}" for t in FAQ_TOPICS}
    assert {r for r in RESPONSES if r.startswith("utter_faq_")} == {f"utter_faq_{t}" for t in FAQ_TOPICS}


@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_each_topic_has_one_web_and_one_sms_variation_per_language(topic: str) -> None:
    english = [v for v in RESPONSES[f"utter_faq_{topic}"] if "condition" not in v]
    spanish = [v for v in RESPONSES[f"utter_faq_{topic}"] if _condition(v) == {"language": "es"}]

    assert sorted((v.get("channel") for v in english), key=str) == [None, "twilio"]
    assert sorted((v.get("channel") for v in spanish), key=str) == [None, "twilio"]
    assert len(english) + len(spanish) == len(RESPONSES[f"utter_faq_{topic}"])


def test_every_placeholder_has_a_value(values: dict[str, str]) -> None:
    used = {
        name
        for variations in RESPONSES.values()
        for v in variations
        for _, name, _, _ in Formatter().parse(v["text"])
        if name
    }

    assert used <= set(values), f"no value for {sorted(used - set(values))}"


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_length_after_filling(topic: str, language: str, values: dict[str, str],
                              spanish_values: dict[str, str]) -> None:
    filling = spanish_values if language == "es" else values
    web = fill(variation(topic, None, language)["text"], filling)
    sms = fill(variation(topic, "twilio", language)["text"], filling)

    assert len(web) <= WEB_MAX, f"web answer is {len(web)} characters"
    assert len(sms) <= SMS_MAX, f"SMS answer is {len(sms)} characters"


@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_reading_grade(topic: str, channel: str | None, values: dict[str, str]) -> None:
    text = fill(variation(topic, channel)["text"], values)

    assert textstat.flesch_kincaid_grade(text) <= GRADE_MAX


@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_spanish_reading_ease(topic: str, channel: str | None, spanish_values: dict[str, str]) -> None:
    text = fill(variation(topic, channel, "es")["text"], spanish_values)

    assert SPANISH_TEXT.fernandez_huerta(text) >= SPANISH_EASE_MIN


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", sorted(set(FAQ_TOPICS) - NOT_HEALTH_TOPICS))
def test_health_answers_defer_to_the_provider(topic: str, channel: str | None, language: str) -> None:
    provider = "equipo médico" if language == "es" else "provider"

    assert provider in variation(topic, channel, language)["text"]


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_every_answer_ends_with_a_next_step(topic: str, channel: str | None, language: str, values: dict[str, str],
                                            spanish_values: dict[str, str]) -> None:
    filling = spanish_values if language == "es" else values
    ending = last_sentence(fill(variation(topic, channel, language)["text"], filling))
    next_steps = ("consulta", "algo más") if language == "es" else ("consultation", "something else")

    assert ending.endswith("?"), ending
    assert any(step in ending for step in next_steps), ending


def test_the_textstat_grade_is_meaningful() -> None:
    # Guards the readability check itself: a hard sentence must score above the bar.
    hard = ("Ketamine's antagonism of N-methyl-D-aspartate receptors precipitates glutamatergic neurotransmission, "
            "consequently facilitating synaptogenesis, neuroplasticity and antidepressant pharmacodynamics.")
    assert textstat.flesch_kincaid_grade(hard) > GRADE_MAX


def test_the_fernandez_huerta_score_is_meaningful() -> None:
    # Guards the Spanish check itself: a hard sentence scores below the bar, a plain one above it.
    hard = ("La antagonización farmacológica de receptores glutamatérgicos desencadena modificaciones "
            "neuroplásticas intracelulares, consecuentemente favoreciendo la sinaptogénesis antidepresiva.")
    plain = "La consulta dura unos treinta minutos. Es gratis. ¿Quieres agendar una?"

    assert SPANISH_TEXT.fernandez_huerta(hard) < SPANISH_EASE_MIN < SPANISH_TEXT.fernandez_huerta(plain)


# ------------------------------------------------------------------ crisis resources


CRISIS = RESPONSES["utter_crisis_resources"]
ENGLISH_SELF_HARM = [v for v in CRISIS if _condition(v).get("language", "en") == "en"
                     and _condition(v).get("crisis_kind", "self_harm") == "self_harm"]


def test_there_are_english_self_harm_variations_for_web_and_sms() -> None:
    assert sorted((v.get("channel") for v in ENGLISH_SELF_HARM), key=str) == [None, "twilio"]


@pytest.mark.parametrize("v", ENGLISH_SELF_HARM, ids=lambda v: v.get("channel") or "web")
def test_english_self_harm_resources_have_all_three_numbers(v: dict[str, Any]) -> None:
    for number in ("988", "741741", "911"):
        assert number in v["text"]


@pytest.mark.parametrize("v", CRISIS, ids=lambda v: f"{_condition(v) or 'default'}-{v.get('channel') or 'web'}")
def test_every_crisis_variation_has_911(v: dict[str, Any], values: dict[str, str]) -> None:
    text = fill(v["text"], values)

    assert "911" in text
    if v.get("channel") == "twilio":
        assert len(text) <= SMS_MAX


def _crisis_variations(kind: str, language: str) -> list[dict[str, Any]]:
    if (kind, language) == ("self_harm", "en"):
        return ENGLISH_SELF_HARM
    return [v for v in CRISIS if _condition(v) == {"crisis_kind": kind, "language": language}]


CRISIS_KINDS_AND_LANGUAGES = [(kind, language) for language in ("en", "es") for kind in ("self_harm", "emergency")]


@pytest.mark.parametrize(("kind", "language"), CRISIS_KINDS_AND_LANGUAGES)
def test_each_crisis_kind_and_language_has_a_web_and_an_sms_variation(kind: str, language: str) -> None:
    chosen = _crisis_variations(kind, language)

    assert sorted((v.get("channel") for v in chosen), key=str) == [None, "twilio"]


@pytest.mark.parametrize(
    ("kind", "v"),
    [(kind, v) for kind, language in CRISIS_KINDS_AND_LANGUAGES for v in _crisis_variations(kind, language)],
    ids=lambda x: x if isinstance(x, str) else f"{_condition(x).get('language', 'en')}-{x.get('channel') or 'web'}",
)
def test_crisis_numbers_by_kind_and_language(kind: str, v: dict[str, Any]) -> None:
    # Every self-harm text (any language, any channel) gives 988; emergencies lead with 911.
    text = v["text"]

    if kind == "self_harm":
        assert "988" in text and "911" in text
    else:
        assert "911" in text and ("988" not in text or text.index("911") < text.index("988"))


@pytest.mark.parametrize(
    "response", [r for r in RESPONSES if r.startswith(("utter_escalated", "utter_crisis", "utter_escalation_failed"))]
)
def test_safety_replies_mention_911_in_every_variation(response: str) -> None:
    assert all("911" in v["text"] for v in RESPONSES[response])


SMS_VARIATIONS = [
    pytest.param(v, id=f"{response}-{number}")
    for response in sorted(RESPONSES)
    for number, v in enumerate(RESPONSES[response])
    if v.get("channel") == "twilio"
]


@pytest.mark.parametrize("v", SMS_VARIATIONS)
def test_every_sms_variation_fits_a_text_message(v: dict[str, Any], values: dict[str, str],
                                                 spanish_values: dict[str, str]) -> None:
    assert len(fill(v["text"], spanish_values if language_of(v) == "es" else values)) <= SMS_MAX


SMS_SEGMENTS_MAX = 3
# Exceptions to the 3-segment rule, by (response, language); none today.
SMS_SEGMENTS_ALLOWED: dict[tuple[str, str], int] = {}


@pytest.mark.parametrize(
    ("name", "v"),
    [pytest.param(name, v, id=f"{name}-{number}") for name in sorted(RESPONSES)
     for number, v in enumerate(RESPONSES[name]) if v.get("channel") == "twilio"],
)
def test_every_sms_variation_takes_at_most_three_segments(name: str, v: dict[str, Any], values: dict[str, str],
                                                          spanish_values: dict[str, str]) -> None:
    # Counted by the real encoding: Spanish with á, í, ó or ú is UCS-2, 67 characters a part.
    language = language_of(v)
    segments = count_segments(fill(v["text"], spanish_values if language == "es" else values))

    assert segments.count <= SMS_SEGMENTS_ALLOWED.get((name, language), SMS_SEGMENTS_MAX), segments


SPANISH_FALLBACK = [v for v in RESPONSES["utter_default"] if _condition(v).get("language") == "es"]


def test_the_spanish_fallback_has_a_web_and_an_sms_variation() -> None:
    assert {v.get("channel") for v in SPANISH_FALLBACK} == {None, "twilio"}


@pytest.mark.parametrize("v", SPANISH_FALLBACK, ids=lambda v: v.get("channel") or "web")
def test_the_spanish_fallback_points_to_a_person_and_to_crisis_help(v: dict[str, Any]) -> None:
    assert "{clinic_phone}" in v["text"] and "988" in v["text"] and "911" in v["text"]


# ------------------------------------------------------------------ Spanish


def _others(v: dict[str, Any]) -> dict[str, Any]:
    """A variation's conditions besides the language (the crisis kind)."""
    return {name: value for name, value in _condition(v).items() if name != "language"}


def _covers(spanish: dict[str, Any], english: dict[str, Any]) -> bool:
    return spanish.get("channel") == english.get("channel") and _others(english).items() <= _others(spanish).items()


def english_counterpart(name: str, spanish: dict[str, Any]) -> dict[str, Any]:
    """The English variation a Spanish one words: same channel, the most specific English one
    whose other conditions the Spanish one has too (Spanish self-harm: the English default)."""
    english = [v for v in RESPONSES[name] if language_of(v) == "en" and _covers(spanish, v)]
    return max(english, key=lambda v: len(_others(v)))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def _variations(language: str) -> list[Any]:
    return [pytest.param(name, v, id=f"{name}-{number}") for name in RESPONSES
            for number, v in enumerate(RESPONSES[name]) if language_of(v) == language]


ENGLISH_VARIATIONS, SPANISH_VARIATIONS = _variations("en"), _variations("es")
# The Spanish fallback also gives the clinic's phone: a Spanish message the assistant could not
# read may come from someone who needs a person now, and the phone is the surest way to one.
EXTRA_SPANISH_PLACEHOLDERS = {"utter_default": {"clinic_phone"}}
# In these Spanish SMS answers the clinic's own values (prices, hours, with accents: UCS-2) fill
# most of 3 segments, so they leave these out; the web answers give everything.
SPANISH_SMS_LEFT_OUT = {"utter_faq_cost_insurance": {"payment_options"},
                        "utter_faq_clinic_info": {"clinic_name", "clinic_phone", "consultation_cost"}}


def test_every_response_has_spanish() -> None:
    assert {name for name, v in (p.values for p in SPANISH_VARIATIONS)} == set(RESPONSES)


@pytest.mark.parametrize(("name", "v"), ENGLISH_VARIATIONS)
def test_every_english_variation_has_a_spanish_one_for_its_channel(name: str, v: dict[str, Any]) -> None:
    # A channel's English default would win over a Spanish variation of another channel.
    assert [s for s in RESPONSES[name] if language_of(s) == "es" and _covers(s, v)]


@pytest.mark.parametrize(("name", "v"), SPANISH_VARIATIONS)
def test_a_spanish_variation_is_conditioned_on_spanish_alone(name: str, v: dict[str, Any]) -> None:
    assert set(_condition(v)) <= {"language", "crisis_kind"}
    assert v["text"] != english_counterpart(name, v)["text"]


@pytest.mark.parametrize(("name", "v"), SPANISH_VARIATIONS)
def test_a_spanish_variation_has_the_placeholders_of_its_english_one(name: str, v: dict[str, Any]) -> None:
    english = english_counterpart(name, v)
    left_out = SPANISH_SMS_LEFT_OUT.get(name, set()) if v.get("channel") == "twilio" else set()

    assert _placeholders(v["text"]) == \
        (_placeholders(english["text"]) | EXTRA_SPANISH_PLACEHOLDERS.get(name, set())) - left_out


@pytest.mark.parametrize(("name", "v"), SPANISH_VARIATIONS)
def test_a_spanish_variation_gives_the_emergency_numbers_of_its_english_one(name: str, v: dict[str, Any]) -> None:
    english = english_counterpart(name, v)["text"]

    for number in ("988", "911"):
        if number in english:
            assert number in v["text"], number
    if "988" in v["text"]:  # the Lifeline's Spanish option
        assert "marca 2" in v["text"]


@pytest.mark.parametrize(("name", "v"), SPANISH_VARIATIONS)
def test_spanish_buttons_send_the_english_payloads_under_spanish_titles(name: str, v: dict[str, Any]) -> None:
    spanish, english = v.get("buttons") or [], english_counterpart(name, v).get("buttons") or []

    assert [b["payload"] for b in spanish] == [b["payload"] for b in english]
    assert not {b["title"] for b in spanish} & {b["title"] for b in english}


TIME_EXAMPLES = [
    pytest.param(example, id=f"{name}-{language_of(v)}-{example}")
    for name in ("utter_ask_preferred_time", "utter_invalid_time", "utter_invalid_time_vague")
    for v in RESPONSES[name]
    for example in re.findall(r'"([^"]+)"', v["text"])
]


@pytest.mark.parametrize("example", TIME_EXAMPLES)
def test_the_times_the_answers_suggest_are_read_by_the_booking(example: str) -> None:
    # A patient who types the example we gave must not be told it could not be read.
    monday_morning = datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)

    assert parse_preferred_time(example, load_profile(), monday_morning).problem != "unreadable"

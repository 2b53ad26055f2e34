"""The answers in domain.yml, filled with the real clinic.yml values.

FAQ answers: one web and one SMS (``channel: twilio``) variation per topic, web <= 700 and SMS <=
320 characters, Flesch-Kincaid grade <= 9, health topics defer to "our provider", and every
answer ends with a next step. Crisis resources: 988, 741741 and 911 where they belong.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
import textstat
import yaml

from clinic.profile import load_profile
from tests.faq_topics import FAQ_TOPICS

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text(encoding="utf-8"))
RESPONSES: dict[str, list[dict[str, Any]]] = DOMAIN["responses"]
NOT_HEALTH_TOPICS = {"cost_insurance", "clinic_info"}
WEB_MAX, SMS_MAX, GRADE_MAX = 700, 320, 9.0
# Values the actions pass when they send a response (not from clinic.yml).
RUNTIME_VALUES = {"after_hours": "", "patient_name": "Ana", "preferred_time_display": "Tuesday, April 21 at 2 PM",
                  "phone_display": "(312) 555-0123"}
# The booking actions' values, long ones (SMS variants must still fit in 320 characters).
RUNTIME_VALUES |= {"patient_name": "Maria Gonzalez-Ramirez",
                   "preferred_time_display": "Wednesday, September 30 at 10:30 AM CDT",
                   "old_time_display": "Wednesday, September 23 at 11:30 AM CDT", "booking_code": "K7M4QX",
                   "email_display": "maria.gonzalez.ramirez@example.com", "visit_reason_display": "chronic pain",
                   "patient_type_display": "returning patient", "reminders_display": "yes",
                   "blocked_day": "Wednesday, December 30", "horizon_days": "60"}


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    return load_profile().answer_values() | RUNTIME_VALUES


def fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values)


def variation(topic: str, channel: str | None) -> dict[str, Any]:
    [found] = [v for v in RESPONSES[f"utter_faq_{topic}"] if v.get("channel") == channel]
    return found


def last_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip())[-1]


def test_the_topics_are_the_policys_sixteen() -> None:
    assert len(FAQ_TOPICS) == 16
    assert {i for i in DOMAIN["intents"] if i.startswith("faq_")} == {f"faq_{t}" for t in FAQ_TOPICS}
    assert {r for r in RESPONSES if r.startswith("utter_faq_")} == {f"utter_faq_{t}" for t in FAQ_TOPICS}


@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_each_topic_has_one_web_and_one_sms_variation(topic: str) -> None:
    channels = [v.get("channel") for v in RESPONSES[f"utter_faq_{topic}"]]

    assert sorted(channels, key=str) == [None, "twilio"]
    assert all("condition" not in v for v in RESPONSES[f"utter_faq_{topic}"])


def test_every_placeholder_has_a_value(values: dict[str, str]) -> None:
    used = {
        name
        for variations in RESPONSES.values()
        for v in variations
        for _, name, _, _ in Formatter().parse(v["text"])
        if name
    }

    assert used <= set(values), f"no value for {sorted(used - set(values))}"


@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_length_after_filling(topic: str, values: dict[str, str]) -> None:
    web = fill(variation(topic, None)["text"], values)
    sms = fill(variation(topic, "twilio")["text"], values)

    assert len(web) <= WEB_MAX, f"web answer is {len(web)} characters"
    assert len(sms) <= SMS_MAX, f"SMS answer is {len(sms)} characters"


@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_reading_grade(topic: str, channel: str | None, values: dict[str, str]) -> None:
    text = fill(variation(topic, channel)["text"], values)

    assert textstat.flesch_kincaid_grade(text) <= GRADE_MAX


@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", sorted(set(FAQ_TOPICS) - NOT_HEALTH_TOPICS))
def test_health_answers_defer_to_the_provider(topic: str, channel: str | None) -> None:
    assert "provider" in variation(topic, channel)["text"]


@pytest.mark.parametrize("channel", [None, "twilio"], ids=["web", "sms"])
@pytest.mark.parametrize("topic", FAQ_TOPICS)
def test_every_answer_ends_with_a_next_step(topic: str, channel: str | None, values: dict[str, str]) -> None:
    ending = last_sentence(fill(variation(topic, channel)["text"], values))

    assert ending.endswith("?"), ending
    assert "consultation" in ending or "something else" in ending, ending


def test_the_textstat_grade_is_meaningful() -> None:
    # Guards the readability check itself: a hard sentence must score above the bar.
    hard = ("Ketamine's antagonism of N-methyl-D-aspartate receptors precipitates glutamatergic neurotransmission, "
            "consequently facilitating synaptogenesis, neuroplasticity and antidepressant pharmacodynamics.")
    assert textstat.flesch_kincaid_grade(hard) > GRADE_MAX


# ------------------------------------------------------------------ crisis resources


def _condition(v: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in v.get("condition") or []}


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
def test_every_sms_variation_fits_a_text_message(v: dict[str, Any], values: dict[str, str]) -> None:
    assert len(fill(v["text"], values)) <= SMS_MAX


SPANISH_FALLBACK = [v for v in RESPONSES["utter_default"] if _condition(v).get("language") == "es"]


def test_the_spanish_fallback_has_a_web_and_an_sms_variation() -> None:
    assert {v.get("channel") for v in SPANISH_FALLBACK} == {None, "twilio"}


@pytest.mark.parametrize("v", SPANISH_FALLBACK, ids=lambda v: v.get("channel") or "web")
def test_the_spanish_fallback_points_to_a_person_and_to_crisis_help(v: dict[str, Any]) -> None:
    assert "{clinic_phone}" in v["text"] and "988" in v["text"] and "911" in v["text"]

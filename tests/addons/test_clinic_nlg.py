"""addons.clinic_nlg: answers filled from clinic.yml at send time (no retraining, no restart)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from addons import rasa_patches
from addons.clinic_nlg import ClinicNLG
from clinic import log_hygiene
from clinic.profile import DEFAULT_PATH, ProfileError, load_profile

PROJECT_DIR = Path(__file__).resolve().parents[2]
RESPONSES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (PROJECT_DIR / "domain.yml").read_text(encoding="utf-8")
)["responses"]
WITH_BUTTONS = [name for name, variations in RESPONSES.items() if any(v.get("buttons") for v in variations)]
CHANNELS = ("rest", "twilio")


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_DIR / "domain.yml"))


@pytest.fixture
def clinic_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of clinic.yml the NLG reads (CLINIC_PROFILE)."""
    path = tmp_path / "clinic.yml"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("CLINIC_PROFILE", str(path))
    return path


def edit(path: Path, **changes: Any) -> None:
    """Saves clinic.yml with changed values, as an editor would (a later modification time)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.update(changes)
    before = path.stat().st_mtime_ns
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def tracker(domain: Domain, **slots: Any) -> DialogueStateTracker:
    state = DialogueStateTracker("patient-1", domain.slots)
    for name, value in slots.items():
        state.update(SlotSet(name, value))
    return state


def say(nlg: ClinicNLG, domain: Domain, response: str, channel: str = "rest", slots: dict | None = None,
        **kwargs: Any) -> str:
    message = asyncio.run(nlg.generate(response, tracker(domain, **(slots or {})), channel, **kwargs))
    return message["text"]


def test_placeholders_are_filled_from_the_profile(clinic_copy: Path, domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)
    values = load_profile(clinic_copy).answer_values()

    text = say(nlg, domain, "utter_faq_clinic_info")

    for key in ("clinic_name", "clinic_address", "clinic_phone", "clinic_sms", "clinic_hours", "clinic_website"):
        assert values[key] in text
    assert not re.search(r"{\w+}", text)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("response", RESPONSES)
def test_every_response_renders_without_a_left_over_placeholder(clinic_copy: Path, domain: Domain, response: str,
                                                                channel: str) -> None:
    nlg = ClinicNLG(domain=domain)
    runtime = {"after_hours": "", "preferred_time_display": "Tuesday, April 21 at 2 PM",
               "phone_display": "(312) 555-0123",
               # the booking actions' values
               "old_time_display": "Tuesday, April 14 at 2 PM", "booking_code": "K7M4QX", "email_display": "none",
               "visit_reason_display": "anxiety", "patient_type_display": "first visit", "reminders_display": "yes",
               "blocked_day": "Friday, December 25", "horizon_days": "60"}
    slots = {"patient_name": "Ana"}

    text = say(nlg, domain, response, channel, slots=slots, **runtime)

    assert not re.search(r"{\w+}", text), text


def test_the_domain_has_responses_with_buttons(domain: Domain) -> None:
    assert WITH_BUTTONS and set(RESPONSES) == set(domain.responses)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("response", WITH_BUTTONS)
def test_button_payloads_render_as_sent_and_log_no_error(clinic_copy: Path, domain: Domain, response: str,
                                                         channel: str, caplog: pytest.LogCaptureFixture,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """A payload like /inform{"email":"none"} reaches the patient's button intact, with no ERROR
    traceback from Rasa's interpolator (domain.yml doubles the JSON braces)."""
    nlg = ClinicNLG(domain=domain)

    message = asyncio.run(nlg.generate(response, tracker(domain), channel))

    for button in message.get("buttons") or []:  # the checks of one message's buttons
        intent, _, entities = button["payload"].partition("{")
        assert intent.startswith("/") and "{{" not in button["payload"], button
        if entities:
            assert isinstance(json.loads("{" + entities), dict), button
    logged = caplog.text + "".join(capfd.readouterr())  # Rasa's structlog writes to the console
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "interpolator" not in logged and "Traceback" not in logged


def test_the_sms_channel_gets_the_sms_variation(clinic_copy: Path, domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)

    web, sms = say(nlg, domain, "utter_faq_preparation", "rest"), say(nlg, domain, "utter_faq_preparation", "twilio")

    assert web != sms and len(sms) < len(web)


def test_a_changed_profile_changes_the_next_answer(clinic_copy: Path, domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)
    hours = load_profile(clinic_copy).fasting_hours
    assert f"{hours} hours" in say(nlg, domain, "utter_faq_preparation")

    edit(clinic_copy, fasting_hours=hours + 2, name="Lakeside Ketamine Center")

    assert f"{hours + 2} hours" in say(nlg, domain, "utter_faq_preparation")
    assert "Lakeside Ketamine Center" in say(nlg, domain, "utter_greet")


def test_a_broken_edit_keeps_answering_with_the_last_good_profile(clinic_copy: Path, domain: Domain,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    nlg = ClinicNLG(domain=domain)
    before = say(nlg, domain, "utter_faq_clinic_info")

    edit(clinic_copy, phone="not a phone")

    assert say(nlg, domain, "utter_faq_clinic_info") == before
    assert "still using the previous profile" in caplog.text


def test_an_invalid_profile_stops_start_up_naming_the_field(clinic_copy: Path, domain: Domain) -> None:
    edit(clinic_copy, timezone="Mars/Olympus_Mons")

    with pytest.raises(ProfileError, match="'timezone'"):
        ClinicNLG(domain=domain)


def test_call_arguments_and_slots_fill_their_placeholders(clinic_copy: Path, domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)

    text = say(nlg, domain, "utter_booking_requested", slots={"patient_name": "Ana"},
               preferred_time_display="Tuesday, April 21 at 2 PM", phone_display="(312) 555-0123",
               booking_code="K7M4QX")

    assert text.startswith("Thanks, Ana.")
    assert "Tuesday, April 21 at 2 PM" in text and "(312) 555-0123" in text and "K7M4QX" in text


@pytest.mark.parametrize(
    ("kind", "language", "channel", "must_have", "lead"),
    [
        ("self_harm", "en", "rest", ("988", "741741", "911"), "I'm really glad"),
        ("self_harm", "en", "twilio", ("988", "741741", "911"), "I'm glad"),
        ("emergency", "en", "rest", ("911", "988"), "This sounds like a medical emergency. Call 911"),
        ("emergency", "en", "twilio", ("911",), "This sounds like an emergency. Call 911"),
        ("self_harm", "es", "rest", ("988", "911"), "Me alegra"),
        ("self_harm", "es", "twilio", ("988", "911"), "Quiero que"),
        ("emergency", "es", "rest", ("911",), "Esto parece una emergencia médica. Llama al 911"),
        ("emergency", "es", "twilio", ("911",), "Parece una emergencia. Llama al 911"),
        (None, None, "rest", ("988", "741741", "911"), "I'm really glad"),  # the classifier alone said crisis
    ],
)
def test_the_crisis_text_fits_the_kind_language_and_channel(clinic_copy: Path, domain: Domain, kind, language,
                                                            channel: str, must_have: tuple, lead: str) -> None:
    nlg = ClinicNLG(domain=domain)

    text = say(nlg, domain, "utter_crisis_resources", channel, slots={"crisis_kind": kind, "language": language})

    assert text.startswith(lead)
    assert all(number in text for number in must_have)


def test_building_the_nlg_is_where_the_rasa_patches_are_installed(clinic_copy: Path, domain: Domain,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A bare NLG (a unit test) installs all but the server-only patches; the one a Rasa server
    builds from endpoints.yml (with its endpoint config) installs them all."""
    from addons.rasa_patches.registry import PATCHES

    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "1")
    rasa_patches.uninstall()
    ClinicNLG(domain=domain)
    assert rasa_patches.installed() == [p for p in PATCHES if not p.server_only]

    hygiene_was_installed = log_hygiene.installed()
    try:
        ClinicNLG(EndpointConfig(type="addons.clinic_nlg.ClinicNLG"), domain)
        assert rasa_patches.installed() == PATCHES
    finally:
        if not hygiene_was_installed:
            log_hygiene.uninstall()


# ------------------------------------------------------------------ Spanish

RUNTIME = {"after_hours": "", "preferred_time_display": "martes 21 de abril, 2 p. m. CDT",
           "phone_display": "(312) 555-0123", "old_time_display": "martes 14 de abril, 2 p. m. CDT",
           "booking_code": "K7M4QX", "email_display": "ana@example.com", "visit_reason_display": "ansiedad",
           "patient_type_display": "primera visita", "reminders_display": "sí",
           "blocked_day": "viernes 25 de diciembre", "horizon_days": "60",
           "staff_reply_time": "pronto"}  # the NLG's own value, given here so the expected text is known


def _language(v: dict[str, Any]) -> str:
    return next((c["value"] for c in v.get("condition") or [] if c["name"] == "language"), "en")


def _filled(response: str, language: str, channel: str, clinic: Path) -> set[str]:
    """The texts a patient may get: the response's variations in ``language`` (self-harm ones for
    the crisis text) for the channel, or the web ones where the response has no SMS wording,
    filled as the NLG fills them."""
    mine = [v for v in RESPONSES[response] if _language(v) == language
            and all(c["value"] in (language, "self_harm") for c in v.get("condition") or [])]
    for_channel = [v for v in mine if v.get("channel") == channel] or [v for v in mine if "channel" not in v]
    values = load_profile(clinic).answer_values(language) | RUNTIME | {"patient_name": "Ana"}
    return {v["text"].format(**values) for v in for_channel}


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("language", ["es", "en", None], ids=["es", "en", "unset"])
def test_the_conversation_language_picks_the_texts(clinic_copy: Path, domain: Domain, response: str, channel: str,
                                                   language: str | None) -> None:
    """Spanish gets its Spanish wording on every channel; English, or no language yet, gets
    exactly the English texts."""
    nlg = ClinicNLG(domain=domain)

    text = say(nlg, domain, response, channel, slots={"patient_name": "Ana", "language": language,
                                                      "crisis_kind": "self_harm"}, **RUNTIME)

    assert text in _filled(response, language or "en", channel, clinic_copy)


def test_spanish_answers_carry_the_clinics_spanish_values(clinic_copy: Path, domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)
    spanish = yaml.safe_load(clinic_copy.read_text(encoding="utf-8"))["spanish"]

    info = say(nlg, domain, "utter_faq_clinic_info", slots={"language": "es"})
    cost = say(nlg, domain, "utter_faq_cost_insurance", slots={"language": "es"})

    assert spanish["parking"] in info and "lunes a jueves de 8 a. m. a 6 p. m." in info
    assert spanish["insurance"] in cost and spanish["payment_options"] in cost and "Una infusión IV cuesta" in cost
    assert cost.endswith("¿Quieres agendar una consulta gratis o preguntar algo más?")


def test_a_field_with_no_spanish_wording_is_sent_in_english(clinic_copy: Path, domain: Domain,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    raw = yaml.safe_load(clinic_copy.read_text(encoding="utf-8"))
    del raw["spanish"]["insurance"]
    edit(clinic_copy, spanish=raw["spanish"])

    with caplog.at_level(logging.WARNING, logger="clinic.profile"):
        nlg = ClinicNLG(domain=domain)
    text = say(nlg, domain, "utter_faq_cost_insurance", slots={"language": "es"})

    assert raw["insurance"] in text and text.startswith("Una infusión IV")
    assert "spanish.insurance" in caplog.text


def test_a_changed_spanish_value_changes_the_next_spanish_answer(clinic_copy: Path, domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)
    raw = yaml.safe_load(clinic_copy.read_text(encoding="utf-8"))
    say(nlg, domain, "utter_faq_clinic_info", slots={"language": "es"})

    edit(clinic_copy, spanish=raw["spanish"] | {"parking": "Estaciona en la calle Maple."})

    assert "Estaciona en la calle Maple." in say(nlg, domain, "utter_faq_clinic_info", slots={"language": "es"})
    assert raw["parking"] in say(nlg, domain, "utter_faq_clinic_info", slots={"language": "en"})


# ------------------------------------------------------------------ the hand-off acknowledgement

CHICAGO_SATURDAY_EVENING = "2026-12-05T19:30:00-06:00"  # the sample clinic is closed until Monday 8 AM
CHICAGO_TUESDAY_MORNING = "2026-12-08T10:00:00-06:00"  # open


@pytest.mark.parametrize("at, language, channel, expected", [
    (CHICAGO_SATURDAY_EVENING, "en", "twilio",
     "Your message is with our team; they'll reply during business hours, next from Monday at 8 AM. "
     "In a crisis, call or text 988."),
    (CHICAGO_SATURDAY_EVENING, "es", "twilio",
     "Tu mensaje está con nuestro equipo; te responderán en horario de atención (a partir del lunes a las 8 a. m.). "
     "En una crisis, llama o escribe al 988 (marca 2 para español)."),
    (CHICAGO_TUESDAY_MORNING, "en", "socketio",
     "Your message is with our team; they'll reply shortly. In a crisis, call or text 988."),
    (CHICAGO_TUESDAY_MORNING, "es", "socketio",
     "Tu mensaje está con nuestro equipo; te responderán pronto. En una crisis, llama o escribe al 988 (marca 2 "
     "para español)."),
])
def test_the_hand_off_acknowledgement_says_when_staff_reply(clinic_copy: Path, domain: Domain,
                                                            monkeypatch: pytest.MonkeyPatch, at: str, language: str,
                                                            channel: str, expected: str) -> None:
    from datetime import datetime, timezone

    monkeypatch.setattr("clinic.clock.utcnow", lambda: datetime.fromisoformat(at).astimezone(timezone.utc))
    nlg = ClinicNLG(domain=domain)

    assert say(nlg, domain, "utter_handoff_ack", channel, slots={"language": language}) == expected


def test_the_spanish_sms_acknowledgement_fits_three_segments(clinic_copy: Path, domain: Domain,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timezone

    from clinic.channels.segments import count_segments

    # Tuesday 6:30 PM: next opening "mañana miércoles a las 8 a. m.", the longest weekday name
    monkeypatch.setattr("clinic.clock.utcnow",
                        lambda: datetime.fromisoformat("2026-12-08T18:30:00-06:00").astimezone(timezone.utc))
    text = say(ClinicNLG(domain=domain), domain, "utter_handoff_ack", "twilio", slots={"language": "es"})

    assert "(a partir de mañana miércoles a las 8 a. m.)." in text and count_segments(text).count <= 3


def asked(domain: Domain, guard: dict[str, Any], **slots: Any) -> DialogueStateTracker:
    state = tracker(domain, **slots)
    state.update(UserUttered("a question", parse_data={"intent": {"name": "faq_conditions_treated"}, "guard": guard}))
    return state


@pytest.mark.parametrize(("language", "number"), [("en", "988"), ("es", "988")])
def test_an_answer_about_suicide_as_a_topic_ends_with_988(domain: Domain, language: str, number: str) -> None:
    nlg = ClinicNLG(domain=domain)
    guard = {"category": None, "crisis_topic": ["suicidal thoughts"]}

    for channel in CHANNELS:
        message = asyncio.run(nlg.generate("utter_faq_conditions_treated", asked(domain, guard, language=language),
                                           channel))
        assert number in message["text"] and "911" in message["text"]


def test_other_answers_carry_no_crisis_line(domain: Domain) -> None:
    nlg = ClinicNLG(domain=domain)

    message = asyncio.run(nlg.generate("utter_faq_conditions_treated", asked(domain, {"category": None}), "rest"))

    assert "988" not in message["text"]


"""actions.booking in a Spanish conversation: what the actions word themselves (buttons, summary
values, fallbacks) is Spanish, and Spanish answers are read; and the Spanish after-hours note of
an escalation (actions._common)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk.events import FollowupAction

from actions._common import after_hours_note, profile_cache
from actions.booking import (
    ActionAskBookingConfirmed,
    ActionAskCancelConfirmed,
    ActionAskSlotChoice,
    ActionAskSmsConsent,
    ActionAskVisitReason,
    ValidateBookingForm,
    ValidateCancelForm,
)
from actions.safety import ActionEscalateToStaff
from clinic.booking.scheduling import Slot
from clinic.booking.scheduling.builtin import opening_slots
from clinic.dates import weekday_name
from tests.actions.test_booking import answer, offered_value, run, said, slots_of, tracker

SPANISH = {"language": "es"}
CHICAGO = ZoneInfo("America/Chicago")
ALWAYS_CLOSED = {day: "closed" for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                           "sunday")}


@pytest.fixture
def future_slots(use_profile) -> list[Slot]:
    """Open slots of the clinic from tomorrow on (the actions use the real clock)."""
    now = datetime.now(timezone.utc)
    return opening_slots(profile_cache().get(), now + timedelta(days=1), now + timedelta(days=8))


def titles(message: dict[str, Any]) -> list[str]:
    return [b["title"] for b in message["buttons"]]


# ------------------------------------------------------------------ what the actions word


def test_visit_reasons_are_the_spanish_names_of_the_clinics_conditions(use_profile, dispatcher, domain) -> None:
    run(ActionAskVisitReason(), dispatcher, tracker("x", slots=SPANISH), domain)

    [message] = dispatcher.messages
    # clinic.yml spanish.conditions_treated, in the same order; the payloads stay the English values
    assert titles(message) == ["Depresión", "Ansiedad", "TEPT (estrés postraumático)", "TOC", "Dolor crónico",
                               "Otra cosa"]
    assert [b["payload"] for b in message["buttons"]] == [
        '/inform{"visit_reason":"depression"}', '/inform{"visit_reason":"anxiety"}', '/inform{"visit_reason":"PTSD"}',
        '/inform{"visit_reason":"OCD"}', '/inform{"visit_reason":"chronic pain"}', '/inform{"visit_reason":"other"}']


def test_without_spanish_condition_names_the_buttons_keep_the_english_ones(use_profile, dispatcher, domain) -> None:
    use_profile(spanish={**profile_cache().get().spanish.dict(exclude_none=True), "conditions_treated": None})

    run(ActionAskVisitReason(), dispatcher, tracker("x", slots=SPANISH), domain)

    assert titles(dispatcher.messages[0]) == ["Depression", "Anxiety", "PTSD", "OCD", "Chronic pain", "Otra cosa"]


def test_other_times_is_spanish(use_profile, future_slots, dispatcher, domain) -> None:
    asking = tracker("x", slots={**SPANISH, "offered_slots": offered_value(future_slots[:2], future_slots[0].start)})

    run(ActionAskSlotChoice(), dispatcher, asking, domain)

    assert titles(dispatcher.messages[0])[-1] == "Otros horarios"
    assert dispatcher.messages[0]["preferred_time_display"].split()[0] in {weekday_name(d, "es") for d in range(7)}


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"email": "none", "visit_reason": "anxiety", "patient_type": "new", "sms_consent": True},
         ("ninguno", "ansiedad", "primera visita", "sí")),
        ({"email": "ana@example.com", "visit_reason": "PTSD", "patient_type": "returning", "sms_consent": False},
         ("ana@example.com", "TEPT (estrés postraumático)", "paciente que regresa", "no")),
        ({"email": None, "visit_reason": "other", "patient_type": "new", "sms_consent": True},
         ("ninguno", "otra cosa", "primera visita", "sí")),
    ],
)
def test_the_summary_is_in_spanish(use_profile, future_slots, dispatcher, domain, changes: dict[str, Any],
                                   shown: tuple[str, ...]) -> None:
    chosen = future_slots[0]
    slots = {**SPANISH, "patient_name": "Ana López", "phone": "+13125550123", "slot_choice": chosen.start.isoformat(),
             "offered_slots": offered_value([chosen]), **changes}

    run(ActionAskBookingConfirmed(), dispatcher, tracker("x", slots=slots, form="booking_form"), domain)

    [message] = dispatcher.messages
    assert (message["email_display"], message["visit_reason_display"], message["patient_type_display"],
            message["reminders_display"]) == shown
    assert titles(message) == ["Sí, agéndala", "No, cambiar la hora"]
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]


def test_a_spanish_request_summary_asks_to_send_it(use_profile, future_slots, dispatcher, domain) -> None:
    use_profile(booking={**profile_cache().get().booking.dict(), "backend": "webhook",
                         "blocked_dates": [], "calcom_event_type_id": None})
    slots = {**SPANISH, "patient_name": "Ana", "phone": "+13125550123",
             "slot_choice": future_slots[0].start.isoformat()}

    run(ActionAskBookingConfirmed(), dispatcher, tracker("x", slots=slots, form="booking_form"), domain)

    assert titles(dispatcher.messages[0]) == ["Sí, envíala", "No, cambiar la hora"]


def test_moving_and_cancelling_buttons_are_spanish(use_profile, future_slots, dispatcher, domain) -> None:
    ref = {"kind": "booking", "id": 1, "code": "K7M4QX", "start": future_slots[1].start.isoformat()}
    chosen = future_slots[0].start.isoformat()
    moving = tracker("x", slots={**SPANISH, "booking_ref": ref, "slot_choice": chosen}, form="reschedule_form")

    run(ActionAskBookingConfirmed(), dispatcher, moving, domain)
    run(ActionAskCancelConfirmed(), dispatcher, tracker("x", slots={**SPANISH, "booking_ref": ref}), domain)

    assert [titles(m) for m in dispatcher.messages] == [["Sí, cámbiala", "No, otro horario"],
                                                        ["Sí, cancélala", "No, déjala así"]]


def test_reminders_are_asked_with_spanish_buttons(use_profile, dispatcher, domain) -> None:
    run(ActionAskSmsConsent(), dispatcher, tracker("x", slots=SPANISH), domain)

    [message] = dispatcher.messages
    # read after "al" in the Spanish question: "...por texto al número que nos diste?"
    assert message["phone_display"] == "número que nos diste"
    assert titles(message) == ["Sí, envíenme textos", "No, sin textos"]


def test_a_booking_not_found_without_a_number_says_so_in_spanish(use_profile, dispatcher, domain) -> None:
    wrong = answer("booking_code", "ZZZZZZ", form="cancel_form", slots=SPANISH)

    run(ValidateCancelForm(), dispatcher, wrong, domain)

    assert said(dispatcher) == ["utter_booking_not_found"]
    assert dispatcher.messages[0]["phone_display"] == "número que nos diste"


def test_english_conversations_keep_english_words(use_profile, dispatcher, domain) -> None:
    run(ActionAskSmsConsent(), dispatcher, tracker("x", slots={"language": "en"}), domain)

    assert (dispatcher.messages[0]["phone_display"], titles(dispatcher.messages[0])) == (
        "your mobile", ["Yes, text me", "No texts"])


# ------------------------------------------------------------------ Spanish answers


@pytest.mark.parametrize(
    ("slot", "typed", "value"),
    [
        ("email", "saltar", "none"),
        ("email", "Sáltalo", "none"),
        ("email", "no tengo", "none"),
        ("email", "no tengo correo, perdón", "none"),
        ("email", "ninguno", "none"),
        ("visit_reason", "ansiedad", "anxiety"),
        ("visit_reason", "TEPT", "PTSD"),
        ("visit_reason", "estres postraumatico", "PTSD"),
        ("visit_reason", "toc", "OCD"),
        ("visit_reason", "dolor cronico", "chronic pain"),
        ("visit_reason", "fibromialgia", "chronic pain"),
        ("visit_reason", "otra cosa", "other"),
        ("patient_type", "sí", "new"),
        ("patient_type", "sí, es mi primera vez", "new"),
        ("patient_type", "no es mi primera vez", "returning"),
        ("patient_type", "ya he venido antes", "returning"),
        ("sms_consent", "sí", True),
        ("sms_consent", "si", True),
        ("sms_consent", "claro", True),
        ("sms_consent", "dale", True),
        ("sms_consent", "ok", True),
        ("sms_consent", "no", False),
        ("sms_consent", "nel", False),
        ("sms_consent", "mejor no", False),
        ("booking_confirmed", "sí, agéndala", True),
    ],
)
def test_a_spanish_answer_is_kept(use_profile, dispatcher, domain, slot: str, typed: str, value: Any) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer(slot, typed, slots=SPANISH), domain)

    assert slots_of(events)[slot] == value
    assert dispatcher.messages == []


@pytest.mark.parametrize("typed", ["otros", "otra hora", "otros horarios", "ninguno"])
def test_other_times_in_spanish_asks_for_another_time(use_profile, future_slots, dispatcher, domain,
                                                      typed: str) -> None:
    choosing = answer("slot_choice", typed, slots={**SPANISH, "offered_slots": offered_value(future_slots[:3])})

    events = run(ValidateBookingForm(), dispatcher, choosing, domain)

    assert said(dispatcher) == ["utter_booking_other_times"]
    assert slots_of(events)["preferred_time"] is None


def test_an_offer_is_chosen_by_its_spanish_weekday(use_profile, future_slots, dispatcher, domain) -> None:
    days = {}
    for s in future_slots:
        days.setdefault(s.start.astimezone(CHICAGO).date(), s)
    offers = list(days.values())[:3]
    second = weekday_name(offers[1].start.astimezone(CHICAGO).weekday(), "es")
    choosing = answer("slot_choice", f"el {second}", slots={**SPANISH, "offered_slots": offered_value(offers)})

    events = run(ValidateBookingForm(), dispatcher, choosing, domain)

    assert slots_of(events)["slot_choice"] == offers[1].start.isoformat()


@pytest.mark.parametrize("typed", ["olvidalo", "Olvídalo", "ya no quiero"])
def test_a_spanish_never_mind_leaves_the_form(use_profile, dispatcher, domain, typed: str) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer("email", typed, slots=SPANISH), domain)

    assert events[-1] == FollowupAction("action_cancel_booking_form")


def test_a_spanish_time_gets_offers_on_that_day(clinic_db, use_profile, dispatcher, domain) -> None:
    events = run(ValidateBookingForm(), dispatcher, answer("preferred_time", "el próximo martes en la tarde",
                                                           slots=SPANISH), domain)

    when = datetime.fromisoformat(slots_of(events)["preferred_time"]).astimezone(CHICAGO)
    assert (when.weekday(), when.hour) == (1, 15)
    assert len(slots_of(events)["offered_slots"]["slots"]) == 3


# ------------------------------------------------------------------ the escalation's after-hours note


@pytest.mark.parametrize(
    ("now", "note"),
    [
        (datetime(2026, 4, 13, 10, 0, tzinfo=CHICAGO), ""),  # Monday, open
        (datetime(2026, 4, 13, 19, 0, tzinfo=CHICAGO),
         " Ahora estamos cerrados, así que será a partir de mañana (martes) a las 8 a. m."),
        (datetime(2026, 4, 18, 14, 0, tzinfo=CHICAGO),
         " Ahora estamos cerrados, así que será a partir del lunes a las 8 a. m."),
        (datetime(2026, 4, 13, 6, 30, tzinfo=CHICAGO),
         " Ahora estamos cerrados, así que será a partir de hoy a las 8 a. m."),
    ],
)
def test_the_after_hours_note_in_spanish(use_profile, now: datetime, note: str) -> None:
    assert after_hours_note(now, "es") == note


def test_an_opening_at_one_is_a_la_una(use_profile) -> None:
    use_profile(hours={**ALWAYS_CLOSED, "tuesday": "13:00-18:00"})

    note = after_hours_note(datetime(2026, 4, 13, 19, 0, tzinfo=CHICAGO), "es")

    assert note == " Ahora estamos cerrados, así que será a partir de mañana (martes) a la 1 p. m."


def test_a_spanish_escalation_while_closed_says_when_in_spanish(clinic_db, use_profile, dispatcher, domain) -> None:
    use_profile(hours=ALWAYS_CLOSED)
    asking = tracker("quiero hablar con una persona", "request_human", slots=SPANISH)

    run(ActionEscalateToStaff(), dispatcher, asking, domain)

    assert dispatcher.messages[0]["after_hours"] == (
        " Ahora estamos cerrados, así que será en cuanto la clínica vuelva a abrir.")

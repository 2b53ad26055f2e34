"""Booking, rescheduling and cancelling consultations (logic: clinic.booking.service, clinic.booking.scheduling).

Three forms share their answers' validation (:class:`_BookingAnswers`):

* ``booking_form``: name, mobile (not asked on SMS: the sender's number), email (optional),
  visit reason, new or returning, SMS reminder consent, preferred time, one of up to three
  offered slots, and a yes to the summary; then :class:`ActionSubmitBooking` books it.
* ``reschedule_form``: mobile, booking code, preferred time, slot, yes; then
  :class:`ActionSubmitReschedule`.
* ``cancel_form``: mobile, booking code, yes (after the cancellation policy); then
  :class:`ActionSubmitCancel`.

A whole message like "never mind" leaves any of them (the stop actions). Crisis, medical and
"a person" messages never become answers (``not_intent`` in domain.yml): the safety rules
take them. Backend calls run in a worker thread so one slow backend does not stall others.

Words the actions put into responses (button titles, summary values, dates) follow the
conversation's ``language`` slot; answers are read in English and Spanish whatever it is.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions._common import FORM_SLOTS, channel_of, profile_cache, sms_sender_phone
from clinic.booking import service as booking
from clinic.booking.scheduling import Appointment, BookingDraft, Patient, SchedulerError, Slot
from clinic.booking.service import OTHER_REASON, Outcome
from clinic.booking.timeparse import display_date, display_slot, parse_preferred_time, short_slot
from clinic.clock import as_utc, utcnow
from clinic.contact import clean_name, display_phone, normalize_email, normalize_phone
from clinic.dates import SPANISH
from clinic.profile import ClinicProfile

logger = logging.getLogger(__name__)

NO_EMAIL = "none"
REQUEST = "request"  # slot_choice when the backend could not list slots: a request for staff
MAX_LOOKUPS = 3
STOP_ACTIONS = {
    "booking_form": "action_cancel_booking_form",
    "reschedule_form": "action_stop_manage_booking",
    "cancel_form": "action_stop_manage_booking",
}
TIME_PROBLEMS = {
    "unreadable": "utter_invalid_time",
    "vague": "utter_invalid_time_vague",
    "past": "utter_invalid_time_past",
    "closed": "utter_invalid_time_closed",
    "blocked": "utter_invalid_time_blocked",
    "too_far": "utter_invalid_time_far",
}
YES_NO_INTENTS = {"affirm": True, "deny": False}
DIGRESSION_CONFIDENCE = 0.5
# What the actions word themselves, in each language responses are written in (else English).
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "time_asked": "the time you asked for", "no_email": "none", "other_reason": "other",
        "new": "first visit", "returning": "returning patient", "yes": "yes", "no": "no",
        "your_mobile": "your mobile", "that_number": "that number",
        "something_else": "Something else", "other_times": "Other times",
        "texts_yes": "Yes, text me", "texts_no": "No texts", "move_yes": "Yes, move it", "move_no": "No, another time",
        "book_yes": "Yes, book it", "send_yes": "Yes, send it", "book_no": "No, change the time",
        "cancel_yes": "Yes, cancel it", "cancel_no": "No, keep it",
    },
    SPANISH: {
        # After "el", "del", "al" and "para el" in the Spanish responses.
        "time_asked": "día que pediste", "your_mobile": "número que nos diste", "that_number": "número que nos diste",
        "no_email": "ninguno", "other_reason": "otra cosa",
        "new": "primera visita", "returning": "paciente que regresa", "yes": "sí", "no": "no",
        "something_else": "Otra cosa", "other_times": "Otros horarios",
        "texts_yes": "Sí, envíenme textos", "texts_no": "No, sin textos", "move_yes": "Sí, cámbiala",
        "move_no": "No, otro horario", "book_yes": "Sí, agéndala", "send_yes": "Sí, envíala",
        "book_no": "No, cambiar la hora", "cancel_yes": "Sí, cancélala", "cancel_no": "No, déjala así",
    },
}


# ------------------------------------------------------------------ helpers


def _profile() -> ClinicProfile:
    return profile_cache().get()


def _words(tracker: Tracker) -> dict[str, str]:
    """:data:`WORDS` in the conversation's language."""
    return WORDS.get(tracker.get_slot("language") or "en", WORDS["en"])


def _reason_names(profile: ClinicProfile, language: str | None) -> list[str]:
    """The visit reasons as the patient reads them, in clinic.yml's ``conditions_treated`` order."""
    spanish = profile.spanish.conditions_treated
    return list(spanish) if language == SPANISH and spanish else list(profile.conditions_treated)


def _reason_display(reason: str | None, profile: ClinicProfile, tracker: Tracker) -> str:
    """A visit reason (a ``conditions_treated`` value or ``other``) in the conversation's language."""
    names = dict(zip(profile.conditions_treated, _reason_names(profile, tracker.get_slot("language"))))
    return names.get(reason or OTHER_REASON) or _words(tracker)["other_reason"]


def _latest(tracker: Tracker) -> tuple[str, str | None, float]:
    """The latest message's text, intent and confidence."""
    message = tracker.latest_message or {}
    intent = message.get("intent") or {}
    return str(message.get("text") or ""), intent.get("name"), float(intent.get("confidence") or 0.0)


def _entity(tracker: Tracker, name: str) -> str | None:
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == name and entity.get("value") is not None:
            return str(entity["value"])
    return None


def _digression(tracker: Tracker, form: str) -> str | None:
    """The response answering what the patient asked instead of answering (an FAQ...)."""
    _, intent, confidence = _latest(tracker)
    if not intent or confidence < DIGRESSION_CONFIDENCE:
        return None
    if intent.startswith("faq_"):
        return f"utter_{intent}"
    if intent == "bot_challenge":
        return "utter_bot_challenge"
    if intent == "book_consultation" and form == "booking_form":
        return "utter_booking_continue"
    return None


def _yes_no(value: Any, tracker: Tracker) -> bool | None:
    if isinstance(value, bool):
        return value
    answer = booking.read_yes_no(str(value or ""))
    if answer is None:
        _, intent, confidence = _latest(tracker)
        if intent in YES_NO_INTENTS and confidence >= 0.7:
            return YES_NO_INTENTS[intent]
    return answer


def _iso(when: datetime) -> str:
    return when.isoformat()


def _parse_iso(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


def offered(tracker: Tracker) -> list[Slot]:
    """The slots last offered (slot ``offered_slots``: ``{"preferred": iso, "slots": [[start, end]]}``)."""
    data = tracker.get_slot("offered_slots") or {}
    slots = []
    for pair in data.get("slots") or [] if isinstance(data, dict) else []:
        start, end = _parse_iso(pair[0]), _parse_iso(pair[1])
        if start and end:
            slots.append(Slot(start, end))
    return slots


def _offer_value(preferred: datetime | None, slots: list[Slot], profile: ClinicProfile) -> dict[str, Any]:
    tz = profile.tz
    return {"preferred": _iso(preferred.astimezone(tz)) if preferred else None,
            "slots": [[_iso(s.start.astimezone(tz)), _iso(s.end.astimezone(tz))] for s in slots]}


def _appointment(tracker: Tracker) -> Appointment | None:
    ref = tracker.get_slot("booking_ref")
    if not isinstance(ref, dict):
        return None
    start, end = _parse_iso(ref.get("start")), _parse_iso(ref.get("end"))
    return Appointment(kind=ref["kind"], id=int(ref["id"]), code=ref.get("code") or "", start=start, end=end,
                       status=ref.get("status") or "", backend=ref.get("backend"),
                       external_uid=ref.get("external_uid"), phone=ref.get("phone"))


def _ref_value(appointment: Appointment) -> dict[str, Any]:
    return {"kind": appointment.kind, "id": appointment.id, "code": appointment.code,
            "start": _iso(appointment.start) if appointment.start else None,
            "end": _iso(appointment.end) if appointment.end else None, "status": appointment.status,
            "backend": appointment.backend, "external_uid": appointment.external_uid, "phone": appointment.phone}


def _when_text(when: datetime | None, profile: ClinicProfile, tracker: Tracker) -> str:
    """The slot as the patient reads it, in the conversation's language."""
    if when is None:
        return _words(tracker)["time_asked"]
    return display_slot(when, profile.tz, tracker.get_slot("language"))


def _clear() -> list[EventType]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


def _chosen_slot(tracker: Tracker, profile: ClinicProfile) -> Slot | None:
    """The slot the patient chose (or, for a request, the preferred time)."""
    length = timedelta(minutes=profile.booking.slot_minutes)
    choice = tracker.get_slot("slot_choice")
    start = _parse_iso(tracker.get_slot("preferred_time")) if choice == REQUEST else _parse_iso(choice)
    if start is None:
        return None
    same = next((s for s in offered(tracker) if as_utc(s.start) == as_utc(start)), None)
    return same or Slot(start, start + length)


def _yes_no_buttons(yes: str, no: str) -> list[dict[str, str]]:
    return [{"title": yes, "payload": "/affirm"}, {"title": no, "payload": "/deny"}]


# ------------------------------------------------------------------ validation


class _BookingAnswers(FormValidationAction, ABC):
    """Validation shared by the three booking forms (each slot's validator re-asks specifically)."""

    @abstractmethod
    def name(self) -> str:
        """The validation action's name (``validate_<form>``)."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """Leaves the form on a whole-message "never mind"; else validates as usual."""
        form = self.form_name()
        requested = tracker.get_slot("requested_slot")
        if tracker.active_loop.get("name") == form and requested and booking.is_stop(_latest(tracker)[0]):
            return [SlotSet(requested, None), SlotSet("requested_slot", None), FollowupAction(STOP_ACTIONS[form])]
        events = await super().run(dispatcher, tracker, domain)
        if any(isinstance(e, dict) and e.get("name") == "lookup_attempts" and (e.get("value") or 0) >= MAX_LOOKUPS
               for e in events):
            events += [SlotSet("requested_slot", None), FollowupAction(STOP_ACTIONS[form])]
        return events

    def _invalid(self, dispatcher: CollectingDispatcher, tracker: Tracker, response: str, **kwargs: Any) -> None:
        """Answers a digression (an FAQ asked instead) or says what was wrong."""
        digression = _digression(tracker, self.form_name())
        dispatcher.utter_message(response=digression or response, **({} if digression else kwargs))

    async def extract_phone(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> dict[str, Any]:
        """On SMS the patient's number is the sender's: it is not asked for."""
        if tracker.get_slot("phone") is None:
            phone = sms_sender_phone(tracker)
            if phone:
                return {"phone": phone}
        return {}

    def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: DomainDict) -> dict[str, Any]:
        phone = normalize_phone(str(value or ""))
        if phone is None:
            dispatcher.utter_message(response="utter_invalid_phone")
        return {"phone": phone}

    async def validate_preferred_time(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                      domain: DomainDict) -> dict[str, Any]:
        """Reads the time; if bookable, finds up to three open slots near it."""
        profile, now = _profile(), utcnow()
        previous = _parse_iso(value)
        if previous is not None and offered(tracker) and as_utc(previous) > now - timedelta(minutes=5):
            return {"preferred_time": _iso(previous)}  # already read (the form resumed)
        parsed = parse_preferred_time(str(value or ""), profile, now, tracker.get_slot("language"))
        if parsed.problem is not None:
            extra: dict[str, str] = {}
            if parsed.problem == "blocked":
                extra["blocked_day"] = display_date(parsed.when.date(), tracker.get_slot("language"))
            dispatcher.utter_message(response=TIME_PROBLEMS[parsed.problem],
                                     horizon_days=str(profile.booking.horizon_days), **extra)
            return {"preferred_time": None}
        return await self._offer(parsed.when, None if parsed.earliest else parsed.when, dispatcher, tracker)

    async def _offer(self, when: datetime, preferred: datetime | None, dispatcher: CollectingDispatcher,
                     tracker: Tracker) -> dict[str, Any]:
        profile = _profile()
        current = _appointment(tracker)
        exclude = {as_utc(current.start).isoformat()} if current is not None and current.start else set()
        try:
            slots = await asyncio.to_thread(booking.offers, profile, when, exclude=exclude)
        except (SchedulerError, SQLAlchemyError):
            logger.exception("could not list open slots; the booking becomes a request for staff")
            dispatcher.utter_message(response="utter_scheduler_down")
            return {"preferred_time": _iso(when), "offered_slots": _offer_value(preferred, [], profile),
                    "slot_choice": REQUEST}
        if not slots:
            dispatcher.utter_message(response="utter_no_slots_near")
            return {"preferred_time": None, "offered_slots": None}
        return {"preferred_time": _iso(when), "offered_slots": _offer_value(preferred, slots, profile),
                "slot_choice": None}

    async def validate_slot_choice(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> dict[str, Any]:
        """One of the offered slots; "other times" asks for another time; a new time re-offers."""
        if value == REQUEST:
            return {"slot_choice": REQUEST}
        slots = offered(tracker)
        text = str(value or "")
        choice = booking.read_slot_choice(text, slots)
        if isinstance(choice, int):
            return {"slot_choice": _iso(slots[choice].start)}
        if choice == "other":
            dispatcher.utter_message(response="utter_booking_other_times")
            return {"slot_choice": None, "preferred_time": None, "offered_slots": None}
        stale = _parse_iso(text)
        if stale is not None:  # a button of an earlier offer: booking checks it is still free
            return {"slot_choice": _iso(stale)}
        profile, now = _profile(), utcnow()
        parsed = parse_preferred_time(text, profile, now, tracker.get_slot("language"))
        if (parsed.problem is None and not parsed.earliest and any(ch.isalpha() for ch in text)
                and _digression(tracker, self.form_name()) is None):
            return {**await self._offer(parsed.when, parsed.when, dispatcher, tracker), "slot_choice": None}
        self._invalid(dispatcher, tracker, "utter_invalid_slot_choice")
        return {"slot_choice": None}

    async def validate_booking_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                         domain: DomainDict) -> dict[str, Any]:
        """Yes books; no goes back to choosing a time."""
        answer = _yes_no(value, tracker)
        if answer is True:
            return {"booking_confirmed": True}
        if answer is False:
            dispatcher.utter_message(response="utter_booking_change")
            return {"booking_confirmed": None, "slot_choice": None, "preferred_time": None, "offered_slots": None}
        self._invalid(dispatcher, tracker, "utter_invalid_yes_no")
        return {"booking_confirmed": None}


class ValidateBookingForm(_BookingAnswers):
    """Checks each answer of ``booking_form``; a bad one is re-asked saying what was wrong."""

    def name(self) -> str:
        return "validate_booking_form"

    async def extract_patient_name(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> dict[str, Any]:
        """A capitalised name the classifier took for an FAQ ("Bo Park" is not about parking)."""
        text, intent, _ = _latest(tracker)
        if (tracker.active_loop.get("name") != self.form_name() or tracker.get_slot("requested_slot") != "patient_name"
                or not (intent or "").startswith("faq_") or "?" in text):
            return {}
        words = text.split()
        if 2 <= len(words) <= 4 and all(w[:1].isupper() for w in words) and clean_name(text) == text.strip():
            return {"patient_name": text.strip()}
        return {}

    def validate_patient_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict[str, Any]:
        name = clean_name(str(value or ""))
        if name is None:
            dispatcher.utter_message(response="utter_invalid_name")
        return {"patient_name": name}

    def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: DomainDict) -> dict[str, Any]:
        text = str(value or "")
        if text == NO_EMAIL or booking.read_skip(text):
            return {"email": NO_EMAIL}
        email = normalize_email(text)
        if email is None:
            self._invalid(dispatcher, tracker, "utter_invalid_email")
        return {"email": email}

    def validate_visit_reason(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict[str, Any]:
        profile = _profile()
        reasons = profile.conditions_treated
        spanish = dict(zip(_reason_names(profile, SPANISH), reasons))  # read in any conversation
        reason = booking.read_visit_reason(str(value or ""), reasons, spanish)
        if reason is not None and (reason != OTHER_REASON or _digression(tracker, self.form_name()) is None):
            return {"visit_reason": reason}
        self._invalid(dispatcher, tracker, "utter_invalid_visit_reason")
        return {"visit_reason": None}

    def validate_patient_type(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> dict[str, Any]:
        kind = str(value) if value in ("new", "returning") else booking.read_patient_type(str(value or ""))
        if kind is None:
            _, intent, confidence = _latest(tracker)
            if intent in YES_NO_INTENTS and confidence >= 0.7:  # "Is this your first visit?"
                kind = "new" if YES_NO_INTENTS[intent] else "returning"
        if kind is None:
            self._invalid(dispatcher, tracker, "utter_invalid_patient_type")
        return {"patient_type": kind}

    def validate_sms_consent(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> dict[str, Any]:
        answer = _yes_no(value, tracker)
        if answer is None:
            self._invalid(dispatcher, tracker, "utter_invalid_yes_no")
        return {"sms_consent": answer}


class _ManageAnswers(_BookingAnswers, ABC):
    """Finding the patient's booking by mobile number and booking code."""

    async def validate_booking_code(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> dict[str, Any]:
        current = _appointment(tracker)
        if current is not None and current.code == value:
            return {"booking_code": value}  # already found (the form resumed)
        phone = tracker.get_slot("phone")
        found = None
        if phone:
            found = await asyncio.to_thread(booking.find_appointment, phone, str(value or ""))
        if found is not None:
            if self.form_name() == "reschedule_form":
                dispatcher.utter_message(response="utter_booking_found",
                                         preferred_time_display=_when_text(found.start, _profile(), tracker))
            return {"booking_code": found.code, "booking_ref": _ref_value(found), "lookup_attempts": None}
        attempts = int(tracker.get_slot("lookup_attempts") or 0) + 1
        if attempts >= MAX_LOOKUPS:
            dispatcher.utter_message(response="utter_booking_lookup_failed")
            return {"booking_code": None, "lookup_attempts": attempts}
        dispatcher.utter_message(response="utter_booking_not_found",
                                 phone_display=display_phone(phone) if phone else _words(tracker)["that_number"])
        events: dict[str, Any] = {"booking_code": None, "lookup_attempts": attempts}
        if sms_sender_phone(tracker) is None:
            events["phone"] = None  # ask for the number again too: it may be the wrong one
        return events


class ValidateRescheduleForm(_ManageAnswers):
    """Checks the answers of ``reschedule_form``."""

    def name(self) -> str:
        return "validate_reschedule_form"


class ValidateCancelForm(_ManageAnswers):
    """Checks the answers of ``cancel_form``."""

    def name(self) -> str:
        return "validate_cancel_form"

    def validate_cancel_confirmed(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> dict[str, Any]:
        answer = _yes_no(value, tracker)
        if answer is None:
            self._invalid(dispatcher, tracker, "utter_invalid_yes_no")
        return {"cancel_confirmed": answer}


# ------------------------------------------------------------------ questions with live content


class ActionAskVisitReason(Action):
    """Asks what the visit is for, one button per condition the clinic treats (clinic.yml)."""

    def name(self) -> str:
        return "action_ask_visit_reason"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        profile = _profile()
        names = _reason_names(profile, tracker.get_slot("language"))
        buttons = [{"title": name[:1].upper() + name[1:], "payload": f'/inform{{"visit_reason":"{reason}"}}'}
                   for name, reason in zip(names, profile.conditions_treated)]
        buttons.append({"title": _words(tracker)["something_else"],
                        "payload": f'/inform{{"visit_reason":"{OTHER_REASON}"}}'})
        dispatcher.utter_message(response="utter_ask_visit_reason", buttons=buttons)
        return []


class ActionAskSmsConsent(Action):
    """Asks whether reminders may be texted to the number given (or texting)."""

    def name(self) -> str:
        return "action_ask_sms_consent"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        phone = tracker.get_slot("phone")
        words = _words(tracker)
        dispatcher.utter_message(response="utter_ask_sms_consent",
                                 phone_display=display_phone(phone) if phone else words["your_mobile"],
                                 buttons=_yes_no_buttons(words["texts_yes"], words["texts_no"]))
        return []


class ActionAskSlotChoice(Action):
    """Offers the open slots found for the preferred time (buttons; numbered choices on SMS)."""

    def name(self) -> str:
        return "action_ask_slot_choice"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        profile = _profile()
        slots = offered(tracker)
        language = tracker.get_slot("language")
        buttons = [{"title": short_slot(s.start, profile.tz, language),
                    "payload": f'/inform{{"slot_choice":"{_iso(s.start)}"}}'} for s in slots]
        buttons.append({"title": _words(tracker)["other_times"], "payload": '/inform{"slot_choice":"other"}'})
        data = tracker.get_slot("offered_slots") or {}
        preferred = _parse_iso(data.get("preferred")) if isinstance(data, dict) else None
        if preferred is None:
            dispatcher.utter_message(response="utter_ask_slot_choice_earliest", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_ask_slot_choice", buttons=buttons,
                                     preferred_time_display=_when_text(preferred, profile, tracker))
        return []


class ActionAskBookingConfirmed(Action):
    """Repeats what will be booked (or requested, or moved) and asks for a yes."""

    def name(self) -> str:
        return "action_ask_booking_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        profile = _profile()
        words = _words(tracker)
        slot = _chosen_slot(tracker, profile)
        when = _when_text(slot.start if slot else None, profile, tracker)
        if tracker.active_loop.get("name") == "reschedule_form":
            current = _appointment(tracker)
            dispatcher.utter_message(response="utter_ask_reschedule_confirmed", preferred_time_display=when,
                                     old_time_display=_when_text(current.start if current else None, profile, tracker),
                                     buttons=_yes_no_buttons(words["move_yes"], words["move_no"]))
            return []
        email = tracker.get_slot("email")
        phone = tracker.get_slot("phone")
        request = tracker.get_slot("slot_choice") == REQUEST or profile.booking.backend == "webhook"
        dispatcher.utter_message(
            response="utter_ask_request_confirmed" if request else "utter_ask_booking_confirmed",
            preferred_time_display=when,
            phone_display=display_phone(phone) if phone else "",
            email_display=email if email and email != NO_EMAIL else words["no_email"],
            visit_reason_display=_reason_display(tracker.get_slot("visit_reason"), profile, tracker),
            patient_type_display=words["new" if tracker.get_slot("patient_type") == "new" else "returning"],
            reminders_display=words["yes" if tracker.get_slot("sms_consent") else "no"],
            buttons=_yes_no_buttons(words["send_yes" if request else "book_yes"], words["book_no"]),
        )
        return []


class ActionAskCancelConfirmed(Action):
    """Quotes the cancellation policy and asks whether to cancel the booking found."""

    def name(self) -> str:
        return "action_ask_cancel_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        current = _appointment(tracker)
        when = _when_text(current.start if current else None, _profile(), tracker)
        words = _words(tracker)
        dispatcher.utter_message(response="utter_ask_cancel_confirmed", preferred_time_display=when,
                                 buttons=_yes_no_buttons(words["cancel_yes"], words["cancel_no"]))
        return []


# ------------------------------------------------------------------ doing it


def _patient(tracker: Tracker) -> Patient:
    email = tracker.get_slot("email")
    return Patient(
        full_name=tracker.get_slot("patient_name"),
        phone=tracker.get_slot("phone"),
        email=email if email and email != NO_EMAIL else None,
        visit_reason=tracker.get_slot("visit_reason"),
        patient_type=tracker.get_slot("patient_type"),
        sms_consent=bool(tracker.get_slot("sms_consent")),
    )


def _retake(outcome: Outcome, form: str, profile: ClinicProfile, tracker: Tracker,
            dispatcher: CollectingDispatcher, when: str) -> list[EventType]:
    """The chosen time was taken: say so and offer the next closest (the form asks again)."""
    dispatcher.utter_message(response="utter_slot_taken", preferred_time_display=when)
    events: list[EventType] = [SlotSet("slot_choice", None), SlotSet("booking_confirmed", None)]
    if outcome.offers:
        data = tracker.get_slot("offered_slots") or {}
        preferred = _parse_iso(data.get("preferred")) if isinstance(data, dict) else None
        events.append(SlotSet("offered_slots", _offer_value(preferred, outcome.offers, profile)))
    else:
        events += [SlotSet("preferred_time", None), SlotSet("offered_slots", None)]
    return [*events, FollowupAction(form)]


class ActionSubmitBooking(Action):
    """Books the chosen slot (or sends the request) and confirms it with the booking code."""

    def name(self) -> str:
        return "action_submit_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        profile = _profile()
        slot = _chosen_slot(tracker, profile)
        if slot is None or tracker.get_slot("booking_confirmed") is not True or not tracker.get_slot("phone"):
            return []  # the form was left before it was complete: nothing to book
        draft = BookingDraft(_patient(tracker), slot, tracker.sender_id, channel_of(tracker),
                             display_slot(slot.start, profile.tz))
        when = _when_text(slot.start, profile, tracker)
        try:
            if tracker.get_slot("slot_choice") == REQUEST:
                outcome = await asyncio.to_thread(booking.book_request, draft, profile=profile,
                                                  reason="backend_unavailable")
            else:
                outcome = await asyncio.to_thread(booking.book, draft, profile=profile)
        except SQLAlchemyError:
            logger.exception("could not store the booking")
            dispatcher.utter_message(response="utter_booking_failed")
            return []  # the answers are kept, so nothing the patient typed is lost
        if outcome.status == "taken":
            return _retake(outcome, "booking_form", profile, tracker, dispatcher, when)
        details = {
            "preferred_time_display": _when_text(outcome.appointment.start, profile, tracker),
            "booking_code": outcome.appointment.code,
            "phone_display": display_phone(draft.patient.phone),
        }
        response = {"booked": "utter_booking_confirmed", "pending": "utter_booking_pending"}.get(outcome.status)
        if response is None:
            response = "utter_booking_fallback" if outcome.is_fallback else "utter_booking_requested"
        dispatcher.utter_message(response=response, **details)
        return _clear()


class ActionSubmitReschedule(Action):
    """Moves the booking found to the chosen slot (or asks staff to)."""

    def name(self) -> str:
        return "action_submit_reschedule"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        profile = _profile()
        current = _appointment(tracker)
        slot = _chosen_slot(tracker, profile)
        if current is None or slot is None or tracker.get_slot("booking_confirmed") is not True:
            return []
        when = _when_text(slot.start, profile, tracker)
        try:
            if tracker.get_slot("slot_choice") == REQUEST and not current.is_request:
                outcome = await asyncio.to_thread(booking.request_reschedule, current, slot,
                                                  reason="backend_unavailable",
                                                  preferred_time_text=display_slot(slot.start, profile.tz))
            else:
                outcome = await asyncio.to_thread(booking.reschedule, current, slot, profile=profile,
                                                  preferred_time_text=display_slot(slot.start, profile.tz))
        except SQLAlchemyError:
            logger.exception("could not move the booking")
            dispatcher.utter_message(response="utter_booking_failed")
            return []
        if outcome.status == "taken":
            return _retake(outcome, "reschedule_form", profile, tracker, dispatcher, when)
        if outcome.status in ("booked", "pending"):
            dispatcher.utter_message(response="utter_booking_moved", preferred_time_display=when,
                                     booking_code=current.code)
        else:
            dispatcher.utter_message(response="utter_reschedule_requested", preferred_time_display=when)
        return _clear()


class ActionSubmitCancel(Action):
    """Cancels the booking found (or asks staff to), or keeps it on a no."""

    def name(self) -> str:
        return "action_submit_cancel"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        profile = _profile()
        current = _appointment(tracker)
        if current is None or tracker.get_slot("cancel_confirmed") is None:
            return []
        when = _when_text(current.start, profile, tracker)
        if tracker.get_slot("cancel_confirmed") is False:
            dispatcher.utter_message(response="utter_booking_kept", preferred_time_display=when)
            return _clear()
        try:
            outcome = await asyncio.to_thread(booking.cancel, current, profile=profile)
        except SQLAlchemyError:
            logger.exception("could not cancel the booking")
            dispatcher.utter_message(response="utter_booking_failed")
            return []
        response = "utter_booking_cancelled_done" if outcome.status == "cancelled" else "utter_cancel_requested"
        dispatcher.utter_message(response=response, preferred_time_display=when)
        return _clear()


class ActionCancelBookingForm(Action):
    """Leaves the booking form on "stop" / "never mind", keeping nothing it collected."""

    def name(self) -> str:
        return "action_cancel_booking_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_booking_cancelled")
        return [ActiveLoop(None), *_clear()]


class ActionStopManageBooking(Action):
    """Leaves the reschedule or cancel form with the booking unchanged."""

    def name(self) -> str:
        return "action_stop_manage_booking"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if int(tracker.get_slot("lookup_attempts") or 0) < MAX_LOOKUPS:  # else "call us" was said already
            dispatcher.utter_message(response="utter_manage_stopped")
        return [ActiveLoop(None), *_clear()]

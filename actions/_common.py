"""Helpers shared by the actions."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from rasa_sdk import Tracker

from clinic.channels import SMS_CHANNEL
from clinic.clock import utcnow
from clinic.contact import normalize_phone
from clinic.dates import SPANISH, clock_text, weekday_name
from clinic.hours import describe_next_opening, is_open, next_opening
from clinic.profile import ClinicProfile, ProfileCache

# Every slot the booking forms fill (booking_form, reschedule_form, cancel_form): cleared when a
# form is left (crisis protocol, "never mind") or done, so a later booking starts afresh.
FORM_SLOTS = (
    "patient_name", "phone", "email", "visit_reason", "patient_type", "sms_consent", "preferred_time",
    "offered_slots", "slot_choice", "booking_confirmed", "booking_code", "booking_ref", "cancel_confirmed",
    "lookup_attempts", "requested_slot",
)


@lru_cache(maxsize=1)
def profile_cache() -> ProfileCache:
    return ProfileCache()


def channel_of(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "unknown"


def language_of(tracker: Tracker) -> str | None:
    """The conversation's language (its ``language`` slot: ``en`` or ``es``)."""
    return tracker.get_slot("language")


def sms_sender_phone(tracker: Tracker) -> str | None:
    """On SMS, the patient's own number (the sender id, E.164); None on other channels."""
    if channel_of(tracker) != SMS_CHANNEL or not str(tracker.sender_id or "").startswith("+"):
        return None
    return normalize_phone(tracker.sender_id)


def after_hours_note(now: datetime | None = None, language: str | None = None) -> str:
    """" We're closed right now, so that will be from Monday at 8 AM." or "" when open.

    Args:
        language: the conversation's language; Spanish gets " Ahora estamos cerrados, así que
            será a partir del lunes a las 8 a. m.", anything else English.
    """
    profile = profile_cache().get()
    now = now or utcnow()
    if is_open(profile, now):
        return ""
    if language == SPANISH:
        when = _from_next_opening_es(profile, now)
        return f" Ahora estamos cerrados, así que será {when}{'' if when.endswith('.') else '.'}"  # "p. m." ends one
    if next_opening(profile, now) is None:  # "from as soon as the clinic reopens" is not English
        return f" We're closed right now, so that will be {describe_next_opening(profile, now)}."
    return f" We're closed right now, so that will be from {describe_next_opening(profile, now)}."


def _from_next_opening_es(profile: ClinicProfile, now: datetime) -> str:
    """"a partir de mañana (martes) a las 8 a. m.", "a partir del lunes a la 1 p. m."."""
    opening = next_opening(profile, now)
    if opening is None:
        return "en cuanto la clínica vuelva a abrir"
    days = (opening.date() - now.astimezone(profile.tz).date()).days
    clock = clock_text(opening.time(), SPANISH)
    at = f"a la {clock}" if opening.hour % 12 == 1 else f"a las {clock}"  # "a la 1", "a las 2"
    weekday = weekday_name(opening.weekday(), SPANISH)
    if days == 0:
        return f"a partir de hoy {at}"
    if days == 1:
        return f"a partir de mañana ({weekday}) {at}"
    return f"a partir del {weekday} {at}"

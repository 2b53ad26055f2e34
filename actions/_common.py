"""Helpers shared by the actions."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from rasa_sdk import Tracker

from clinic.channels import SMS_CHANNEL
from clinic.clock import utcnow
from clinic.contact import normalize_phone
from clinic.hours import describe_next_opening, is_open, next_opening
from clinic.profile import ProfileCache

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


def sms_sender_phone(tracker: Tracker) -> str | None:
    """On SMS, the patient's own number (the sender id, E.164); None on other channels."""
    if channel_of(tracker) != SMS_CHANNEL or not str(tracker.sender_id or "").startswith("+"):
        return None
    return normalize_phone(tracker.sender_id)


def after_hours_note(now: datetime | None = None) -> str:
    """" We're closed right now, so that will be from Monday at 8 AM." or "" when open."""
    profile = profile_cache().get()
    now = now or utcnow()
    if is_open(profile, now):
        return ""
    if next_opening(profile, now) is None:  # "from as soon as the clinic reopens" is not English
        return f" We're closed right now, so that will be {describe_next_opening(profile, now)}."
    return f" We're closed right now, so that will be from {describe_next_opening(profile, now)}."

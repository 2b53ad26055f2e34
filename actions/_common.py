"""Helpers shared by the actions."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from rasa_sdk import Tracker

from clinic.hours import describe_next_opening, is_open, next_opening
from clinic.profile import ProfileCache


FORM_SLOTS = ("patient_name", "phone", "preferred_time", "requested_slot")


@lru_cache(maxsize=1)
def profile_cache() -> ProfileCache:
    return ProfileCache()


def channel_of(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "unknown"


def after_hours_note(now: datetime | None = None) -> str:
    """" We're closed right now, so that will be from Monday at 8 AM." or "" when open."""
    profile = profile_cache().get()
    now = now or datetime.now(timezone.utc)
    if is_open(profile, now):
        return ""
    if next_opening(profile, now) is None:  # "from as soon as the clinic reopens" is not English
        return f" We're closed right now, so that will be {describe_next_opening(profile, now)}."
    return f" We're closed right now, so that will be from {describe_next_opening(profile, now)}."

"""Preferred visit times in natural words ("next Tuesday afternoon", "mañana a las 10")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import dateparser

from clinic.hours import is_open
from clinic.profile import WEEKDAYS, ClinicProfile

_PARTS_OF_DAY = {
    "morning": time(9, 0),
    "mañana por la mañana": time(9, 0),
    "noon": time(12, 0),
    "lunch": time(12, 0),
    "afternoon": time(14, 0),
    "tarde": time(15, 0),
    "evening": time(17, 0),
}
_VAGUE = re.compile(r"^\s*(whenever|any ?time|anytime|idk|not sure|no preference|asap|soon|cualquier)\b", re.I)


@dataclass(frozen=True)
class PreferredTime:
    when: datetime | None  # aware, clinic time zone
    problem: str | None  # "unreadable" | "past" | "closed" | "vague"


def parse_preferred_time(text: str, profile: ClinicProfile, now: datetime) -> PreferredTime:
    """Reads a preferred day and time in the clinic's time zone and checks it is bookable."""
    if not text or _VAGUE.match(text):
        return PreferredTime(None, "vague")
    local_now = now.astimezone(profile.tz)
    cleaned = text.lower()
    part = next((t for word, t in _PARTS_OF_DAY.items() if word in cleaned), None)
    for word in _PARTS_OF_DAY:
        cleaned = cleaned.replace(word, " ")
    cleaned = re.sub(r"\b(in the|the|on|at around|around|sometime|some time|please|pls|por la)\b", " ", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip() or "today"
    parsed = dateparser.parse(
        cleaned,
        languages=["en", "es"],
        settings={
            "PREFER_DATES_FROM": "future",
            "TIMEZONE": profile.timezone,
            "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
        },
    )
    if parsed is None:
        return PreferredTime(None, "unreadable")
    parsed = parsed.astimezone(profile.tz)
    no_clock = parsed.time() == local_now.replace(microsecond=0).time() or parsed.time() == time(0, 0)
    if part is not None or no_clock:
        hours = profile.hours[WEEKDAYS[parsed.weekday()]]
        default = part or (hours.opens if hours.is_open else time(9, 0))
        parsed = parsed.replace(hour=default.hour, minute=default.minute, second=0, microsecond=0)
    if parsed < local_now - timedelta(minutes=5):
        return PreferredTime(parsed, "past")
    if not is_open(profile, parsed):
        return PreferredTime(parsed, "closed")
    return PreferredTime(parsed, None)


def display_time(when: datetime) -> str:
    """"Tuesday, March 3 at 2 PM"."""
    clock = when.strftime("%-I:%M %p").replace(":00", "")
    return f"{when:%A, %B} {when.day} at {clock}"

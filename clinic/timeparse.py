"""Preferred visit times in natural words ("next Tuesday afternoon", "mañana a las 10")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import dateparser

from clinic.hours import is_open
from clinic.profile import WEEKDAYS, ClinicProfile, clock_text

_PARTS_OF_DAY = {
    "por la mañana": time(9, 0),
    "de la mañana": time(9, 0),
    "por la tarde": time(15, 0),
    "de la tarde": time(15, 0),
    "morning": time(9, 0),
    "noon": time(12, 0),
    "midday": time(12, 0),
    "mediodía": time(12, 0),
    "lunch": time(12, 0),
    "afternoon": time(14, 0),
    "tarde": time(15, 0),
    "evening": time(17, 0),
}
# Whole words only, longest first: "afternoon" is not "noon", "por la mañana" is not "mañana".
_PART_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _PARTS_OF_DAY), key=len, reverse=True)) + r")\b")
_VAGUE = re.compile(r"^\s*(whenever|any ?time|anytime|idk|not sure|no preference|asap|soon|cualquier)\b", re.I)
_WEEKDAY_WORDS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    "lunes|martes|miércoles|miercoles|jueves|viernes|sábado|sabado|domingo"
)
# dateparser reads "tuesday" (future preferred) but not "next tuesday" / "el martes".
_WEEKDAY_LEAD_RE = re.compile(rf"\b(?:next|this|coming|el|este|próximo|proximo)\s+(?=(?:{_WEEKDAY_WORDS})\b)")
# "at 10" / "a las 10" / "at 2:30pm": a clock time dateparser would otherwise drop.
_AT_CLOCK_RE = re.compile(r"\b(?:at|a las|a la)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)")
_CLOCK_RE = re.compile(r"\b\d{1,2}(?::\d{2})?\s*[ap]\.?m\b\.?|\b\d{1,2}:\d{2}\b")
_FILLER_RE = re.compile(r"\b(in the|the|on|at around|around|sometime|some time|please|pls|por la)\b")


@dataclass(frozen=True)
class PreferredTime:
    when: datetime | None  # aware, clinic time zone
    problem: str | None  # "unreadable" | "past" | "closed" | "vague"


def _clock_24h(match: re.Match) -> str:
    hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if meridiem == "p" and hour < 12:
        hour += 12
    elif meridiem == "a" and hour == 12:
        hour = 0
    return f" {hour:02d}:{minute:02d} " if hour < 24 and minute < 60 else match.group(0)


def _clean(text: str) -> tuple[str, time | None]:
    """The text dateparser should read, and the part of day named in it (if any)."""
    cleaned = text.lower()
    match = _PART_RE.search(cleaned)
    part = _PARTS_OF_DAY[match.group(1)] if match else None
    cleaned = _PART_RE.sub(" ", cleaned)
    cleaned = _WEEKDAY_LEAD_RE.sub("", cleaned)
    cleaned = _AT_CLOCK_RE.sub(_clock_24h, cleaned)
    cleaned = _FILLER_RE.sub(" ", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return (cleaned if cleaned not in ("", "this", "hoy") else "today"), part


def parse_preferred_time(text: str, profile: ClinicProfile, now: datetime) -> PreferredTime:
    """Reads a preferred day and time in the clinic's time zone and checks it is bookable.

    Without a clock time the part of day ("afternoon") or the day's opening time is used; for
    "today" that is already past, the next full hour.
    """
    if not text or _VAGUE.match(text):
        return PreferredTime(None, "vague")
    local_now = now.astimezone(profile.tz)
    cleaned, part = _clean(text)
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
    if part is not None or not _CLOCK_RE.search(cleaned):
        hours = profile.hours[WEEKDAYS[parsed.weekday()]]
        default = part or (hours.opens if hours.is_open else time(9, 0))
        parsed = parsed.replace(hour=default.hour, minute=default.minute, second=0, microsecond=0)
        if part is None and parsed.date() == local_now.date() and parsed < local_now:
            parsed = (local_now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    if parsed < local_now - timedelta(minutes=5):
        return PreferredTime(parsed, "past")
    if not is_open(profile, parsed):
        return PreferredTime(parsed, "closed")
    return PreferredTime(parsed, None)


def display_time(when: datetime) -> str:
    """"Tuesday, March 3 at 2 PM"."""
    return f"{when:%A, %B} {when.day} at {clock_text(when.time())}"

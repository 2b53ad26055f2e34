"""Preferred visit times in natural words ("next Tuesday afternoon", "mañana a las 10")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import dateparser

from clinic.dates import display_date, display_slot, display_time, short_slot  # noqa: F401 (re-exported)
from clinic.hours import is_open
from clinic.profile import WEEKDAYS, ClinicProfile

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
_VAGUE = re.compile(
    r"^\s*(whenever|any ?time|anytime|any day|idk|not sure|no preference|doesn'?t matter|cualquier)\b", re.I
)
# "as soon as possible": the earliest bookable time.
_EARLIEST = re.compile(
    r"^\s*(?:the\s+)?(?:asap|a\.s\.a\.p\.?|as soon as (?:possible|you can)|soonest|earliest|"
    r"first (?:available|opening)|next (?:available|opening)|lo antes posible|cuanto antes)\b",
    re.I,
)
_WEEKDAY_WORDS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    "lunes|martes|miércoles|miercoles|jueves|viernes|sábado|sabado|domingo"
)
# dateparser reads "tuesday" (future preferred) but not "next tuesday" / "el martes".
_WEEKDAY_LEAD_RE = re.compile(rf"\b(?:next|this|coming|el|este|próximo|proximo)\s+(?=(?:{_WEEKDAY_WORDS})\b)")
# "at 10" / "a las 10" / "at 2:30pm": a clock time dateparser would otherwise drop.
_AT_CLOCK_RE = re.compile(r"\b(?:at|a las|a la)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)")
# "after 3", "from 2pm", "después de las 4": that clock time; "before 10": an hour earlier.
_AFTER_RE = re.compile(r"\b(?:after|from|past|despu[eé]s de las?)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)")
_BEFORE_RE = re.compile(r"\b(?:before|antes de las?)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)")
_AFTERNOON_HOURS = range(1, 8)  # "at 3" at a clinic means 3 PM
_CLOCK_RE = re.compile(r"\b\d{1,2}(?::\d{2})?\s*[ap]\.?m\b\.?|\b\d{1,2}:\d{2}\b")
_FILLER_RE = re.compile(r"\b(in the|the|on|at around|around|sometime|some time|please|pls|por la)\b")
# "how about wednesday at 3 instead?": the words around a time that are not the time.
_LEAD_RE = re.compile(
    r"^(?:(?:ok(?:ay)?|actually|maybe|hmm|um|well|then|so|and|or|but)[\s,]+)*"
    r"(?:(?:(?:do|does) you have(?: anything| something| a slot| an opening| any(?:thing)? open)?|have you got|"
    r"how about|what about|is there (?:anything|something|a slot|an opening|availability)(?: open)?|"
    r"are there (?:any )?(?:slots|openings|times)|any (?:slots|openings|times)|"
    r"(?:can|could) i (?:do|come in|come|get in|get|have|book)|i (?:can|could) do|i'?d (?:like|prefer)|"
    r"i (?:want|prefer)|(?:would|does|is) .{0,12}?(?:work|ok|okay|possible) for)\b)?",
    re.I,
)
_TAIL_RE = re.compile(
    r"\b(?:instead|if possible|if you can|if that works|would (?:work|be (?:good|great|better))|works(?: for me)?|"
    r"is (?:good|better|fine)|for me|then)\W*$",
    re.I,
)


@dataclass(frozen=True)
class PreferredTime:
    """A preferred visit time, or why it cannot be booked.

    Attributes:
        when: the time read (aware, clinic time zone), also when it cannot be booked.
        problem: None, or "unreadable" | "vague" | "past" | "closed" (a closed weekday or
            hour) | "blocked" (a date the clinic is closed, clinic.yml ``booking.blocked_dates``)
            | "too_far" (beyond ``booking.horizon_days``).
        earliest: the patient asked for the earliest time ("asap", "first available").
    """

    when: datetime | None
    problem: str | None
    earliest: bool = False


def _clock_24h(match: re.Match, earlier: int = 0) -> str:
    hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if meridiem == "p" and hour < 12 or meridiem is None and hour in _AFTERNOON_HOURS:
        hour += 12
    elif meridiem == "a" and hour == 12:
        hour = 0
    hour = max(hour - earlier, 0)
    return f" {hour:02d}:{minute:02d} " if hour < 24 and minute < 60 else match.group(0)


def _clean(text: str) -> tuple[str, time | None]:
    """The text dateparser should read, and the part of day named in it (if any)."""
    cleaned = text.lower().strip().rstrip("?!. ")
    cleaned = _TAIL_RE.sub("", _LEAD_RE.sub("", cleaned)).strip(" ,")
    match = _PART_RE.search(cleaned)
    part = _PARTS_OF_DAY[match.group(1)] if match else None
    cleaned = _PART_RE.sub(" ", cleaned)
    cleaned = _WEEKDAY_LEAD_RE.sub("", cleaned)
    cleaned = _AT_CLOCK_RE.sub(_clock_24h, cleaned)
    cleaned = _AFTER_RE.sub(_clock_24h, cleaned)
    cleaned = _BEFORE_RE.sub(lambda m: _clock_24h(m, earlier=1), cleaned)
    cleaned = _FILLER_RE.sub(" ", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return (cleaned if cleaned not in ("", "this", "hoy") else "today"), part


def parse_preferred_time(text: str, profile: ClinicProfile, now: datetime) -> PreferredTime:
    """Reads a preferred day and time in the clinic's time zone and checks it is bookable.

    Without a clock time the part of day ("afternoon") or the day's opening time is used; for
    "today" that is already past, the next full hour. "As soon as possible" is now. A clock
    time without AM/PM from 1 to 7 is in the afternoon ("at 3", "after 4").
    """
    local_now = now.astimezone(profile.tz)
    if text and _EARLIEST.match(text):
        return PreferredTime(local_now, None, earliest=True)
    if not text or _VAGUE.match(text):
        return PreferredTime(None, "vague")
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
    if not _CLOCK_RE.search(cleaned):  # no clock time: the part of day, or the opening time
        hours = profile.hours[WEEKDAYS[parsed.weekday()]]
        default = part or hours.opens or time(9, 0)  # the opening time; 9 AM on a closed day
        parsed = parsed.replace(hour=default.hour, minute=default.minute, second=0, microsecond=0)
        if part is None and parsed.date() == local_now.date() and parsed < local_now:
            parsed = (local_now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    if parsed < local_now - timedelta(minutes=5):
        return PreferredTime(parsed, "past")
    if parsed.date() in profile.booking.blocked_dates:
        return PreferredTime(parsed, "blocked")
    if parsed > local_now + timedelta(days=profile.booking.horizon_days):
        return PreferredTime(parsed, "too_far")
    if not is_open(profile, parsed):
        return PreferredTime(parsed, "closed")
    return PreferredTime(parsed, None)


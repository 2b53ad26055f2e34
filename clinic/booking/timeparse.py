"""Preferred visit times in natural words, English or Spanish ("next Tuesday afternoon",
"el martes en la tarde", "mañana temprano", "pasado mañana", "después de las 4").

dateparser reads the day; what it does not read well is rewritten first: parts of the day become
a default hour, clock times a 24-hour "15:00", and Spanish relative days ("pasado mañana", "la
semana que viene") the English dateparser knows. Both languages are always tried (patients mix
them), the conversation's first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import dateparser

from clinic.dates import SPANISH, display_date, display_slot, display_time, short_slot  # noqa: F401 (re-exported)
from clinic.hours import is_open
from clinic.profile import WEEKDAYS, ClinicProfile

# The hour a part of the day stands for, tried in order: "por la mañana" before "mañana" is read
# as tomorrow, "afternoon" before "noon".
_PARTS_OF_DAY = tuple(
    (re.compile(rf"\b(?:{pattern})\b"), part)
    for pattern, part in (
        (r"(?:por|de|en) la ma[nñ]ana", time(9, 0)),
        (r"(?:por|de|en) la tarde", time(15, 0)),
        (r"(?:por|de|en) la noche", time(17, 0)),
        (r"(?:al |a )?medio ?d[ií]a", time(12, 0)),
        (r"morning", time(9, 0)),
        (r"afternoon", time(14, 0)),
        (r"noon|midday|lunch", time(12, 0)),
        (r"evening", time(17, 0)),
        (r"tarde", time(15, 0)),
    )
)
_VAGUE = re.compile(
    r"^\s*(whenever|any ?time|anytime|any day|idk|not sure|no preference|doesn'?t matter|cualquier|cuando sea|"
    r"no importa|me da igual|lo que sea)\b",
    re.I,
)
# "as soon as possible": the earliest bookable time.
_EARLIEST = re.compile(
    r"^\s*(?:the\s+)?(?:asap|a\.s\.a\.p\.?|as soon as (?:possible|you can)|soonest|earliest|"
    r"first (?:available|opening)|next (?:available|opening)|lo antes posible|cuanto antes|"
    r"lo m[aá]s pronto(?: posible)?|(?:el|la) (?:primer[oa]?|m[aá]s pronto) (?:disponible|que (?:tengan|haya)))\b",
    re.I,
)
_WEEKDAY_WORDS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    "lunes|martes|miércoles|miercoles|jueves|viernes|sábado|sabado|domingo"
)
# dateparser reads "tuesday" (future preferred) but not "next tuesday", "el martes", "el próximo
# lunes" or "el lunes que viene".
_WEEKDAY_LEAD_RE = re.compile(
    rf"\b(?:(?:next|this|coming|el|este|pr[oó]ximo|siguiente)\s+)+(?=(?:{_WEEKDAY_WORDS})\b)"
)
_WEEKDAY_TAIL_RE = re.compile(rf"\b({_WEEKDAY_WORDS})\s+(?:que viene|pr[oó]ximo|entrante)\b")
# Spanish relative days dateparser does not read, as English it does.
_SPANISH_DAYS = (
    (re.compile(r"\bpasado ma[nñ]ana\b"), "in 2 days"),
    (re.compile(r"\b(?:la )?(?:semana que viene|semana entrante|pr[oó]xima semana|siguiente semana|otra semana)\b"),
     "next week"),
)
# "at 10" / "a las 10" / "at 2:30pm": a clock time dateparser would otherwise drop.
_AT_CLOCK_RE = re.compile(r"\b(?:at|a las|a la)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)")
# "after 3", "from 2pm", "después de las 4": that clock time; "before 10": an hour earlier.
_AFTER_RE = re.compile(
    r"\b(?:after|from|past|despu[eé]s de las?|a partir de las?|desde las?)"
    r"\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)"
)
_BEFORE_RE = re.compile(r"\b(?:before|antes de las?)\s+(\d{1,2})(?::(\d{2}))?\s*([ap])?\.?m?\.?(?!\w)")
_AFTERNOON_HOURS = range(1, 8)  # "at 3" at a clinic means 3 PM
_CLOCK_RE = re.compile(r"\b\d{1,2}(?::\d{2})?\s*[ap]\.?m\b\.?|\b\d{1,2}:\d{2}\b")
# "early" / "temprano": the day's opening time, which is the default anyway.
_FILLER_RE = re.compile(
    r"\b(in the|the|on|at around|around|sometime|some time|please|pls|early|por la|el|como|temprano)\b"
)
# "how about wednesday at 3 instead?", "¿qué tal el martes en la tarde?": the words around a time
# that are not the time.
_LEAD_RE = re.compile(
    r"^(?:(?:ok(?:ay)?|actually|maybe|hmm|um|well|then|so|and|or|but|bueno|pues|entonces|oye|mejor)[\s,]+)*"
    r"(?:(?:(?:do|does) you have(?: anything| something| a slot| an opening| any(?:thing)? open)?|have you got|"
    r"how about|what about|is there (?:anything|something|a slot|an opening|availability)(?: open)?|"
    r"are there (?:any )?(?:slots|openings|times)|any (?:slots|openings|times)|"
    r"(?:can|could) i (?:do|come in|come|get in|get|have|book)|i (?:can|could) do|i'?d (?:like|prefer)|"
    r"i (?:want|prefer)|(?:would|does|is) .{0,12}?(?:work|ok|okay|possible) for|"
    r"qu[eé] tal|y si|prefiero|quisiera|me gustar[ií]a|(?:puedo|podr[ií]a)(?: ir)?|"
    r"(?:tienen|hay|tendr[aá]n) (?:algo|espacio|lugar|citas?|horarios?)(?: libres?| disponibles?)?|"
    r"me (?:queda|sirve)(?: bien)?)\b)?",
    re.I,
)
_TAIL_RE = re.compile(
    r"\b(?:instead|if possible|if you can|if that works|would (?:work|be (?:good|great|better))|works(?: for me)?|"
    r"is (?:good|better|fine)|for me|then|por favor|porfa|si se puede|si es posible|si hay|me (?:queda|sirve)"
    r"(?: bien)?|est[aá] bien)\W*$",
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


def _clock_24h(match: re.Match, earlier: int = 0, morning: bool = False) -> str:
    hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if meridiem == "p" and hour < 12 or meridiem is None and hour in _AFTERNOON_HOURS and not morning:
        hour += 12
    elif meridiem == "a" and hour == 12:
        hour = 0
    hour = max(hour - earlier, 0)
    return f" {hour:02d}:{minute:02d} " if hour < 24 and minute < 60 else match.group(0)


def _part_of_day(text: str) -> tuple[str, time | None]:
    """The text without the part of the day named in it, and the hour that part stands for."""
    for pattern, part in _PARTS_OF_DAY:
        if pattern.search(text):
            return pattern.sub(" ", text), part
    return text, None


def _clean(text: str) -> tuple[str, time | None]:
    """The text dateparser should read, and the part of day named in it (if any).

    A clock time in a morning ("a las 7 de la mañana", "at 7 in the morning") is not moved to
    the afternoon.
    """
    cleaned = text.lower().strip().lstrip("¿¡ ").rstrip("?!. ")
    cleaned = _TAIL_RE.sub("", _LEAD_RE.sub("", cleaned)).strip(" ,")
    cleaned, part = _part_of_day(cleaned)
    morning = part is not None and part < time(12, 0)
    for pattern, english in _SPANISH_DAYS:
        cleaned = pattern.sub(english, cleaned)
    cleaned = _WEEKDAY_TAIL_RE.sub(r"\1", _WEEKDAY_LEAD_RE.sub("", cleaned))
    cleaned = _AT_CLOCK_RE.sub(lambda m: _clock_24h(m, morning=morning), cleaned)
    cleaned = _AFTER_RE.sub(lambda m: _clock_24h(m, morning=morning), cleaned)
    cleaned = _BEFORE_RE.sub(lambda m: _clock_24h(m, earlier=1, morning=morning), cleaned)
    cleaned = _FILLER_RE.sub(" ", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" ,")
    return (cleaned if cleaned not in ("", "this", "hoy") else "today"), part


def parse_preferred_time(text: str, profile: ClinicProfile, now: datetime,
                         language: str | None = None) -> PreferredTime:
    """Reads a preferred day and time in the clinic's time zone and checks it is bookable.

    Without a clock time the part of day ("afternoon") or the day's opening time is used; for
    "today" that is already past, the next full hour. "As soon as possible" is now. A clock
    time without AM/PM from 1 to 7 is in the afternoon ("at 3", "after 4").

    Args:
        language: the conversation's language; Spanish (``"es"``) is tried before English.
    """
    local_now = now.astimezone(profile.tz)
    if text and _EARLIEST.match(text):
        return PreferredTime(local_now, None, earliest=True)
    if not text or _VAGUE.match(text):
        return PreferredTime(None, "vague")
    cleaned, part = _clean(text)
    parsed = dateparser.parse(
        cleaned,
        languages=[SPANISH, "en"] if language == SPANISH else ["en", SPANISH],
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


# A day or a clock time named in a message ("saturday 10am open?", "is the 3rd at 2:30 free"):
# days of the week (not the abbreviations that are also words: sat, sun, wed), days relative to
# today, dates, and clock times. A part of the day alone ("morning") is also a greeting.
_NAMED_TIME_RE = re.compile(
    rf"\b(?:{_WEEKDAY_WORDS}|mon|tues?|thu|thur|thurs|fri|today|tomorrow|tmrw|tmr|tonight|"
    r"pasado ma[nñ]ana|next week|la semana que viene|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?|"
    r"the \d{1,2}(?:st|nd|rd|th)(?! (?:one|option|choice))|\d{1,2}(?:st|nd|rd|th) of|\d{1,2}/\d{1,2})\b"
    r"|(?:at|a las?|after|before|from|around)\s+\d{1,2}(?::\d{2})?\s*(?:[ap]\.?m\b\.?)?(?!\w)"
    r"|\b\d{1,2}(?::\d{2})?\s*[ap]\.?m\b\.?|\b\d{1,2}:\d{2}\b",
    re.IGNORECASE,
)


def names_a_time(text: str) -> bool:
    """Whether a message names a day or a clock time someone could book."""
    return bool(_NAMED_TIME_RE.search(text))

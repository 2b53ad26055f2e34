"""Days, months and clock times as a patient reads them, in English or Spanish.

English keeps the assistant's "Tuesday, December 8 at 1:30 PM"; Spanish follows the style of US
Spanish-language clinics and the RAE: "martes 8 de diciembre, 1:30 p. m." Day and month names
come from Babel's locale data (CLDR). The clock is written here: CLDR's Spanish "p. m." carries a
narrow no-break space that some phones show as a box in an SMS, and English keeps "2 PM".
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from babel.dates import get_day_names, get_month_names

SPANISH = "es"


def _locale(language: str | None) -> str:
    return SPANISH if language == SPANISH else "en"


def clock_text(t: time, language: str | None = "en") -> str:
    """A time of day: "9 AM", "2:30 PM"; in Spanish "9 a. m.", "2:30 p. m."."""
    hour = t.hour % 12 or 12
    morning, afternoon = ("a. m.", "p. m.") if language == SPANISH else ("AM", "PM")
    suffix = morning if t.hour < 12 else afternoon
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def weekday_name(weekday: int, language: str | None = "en", abbreviated: bool = False) -> str:
    """The name of a weekday (0 is Monday): "Tuesday", "Tue"; "martes", "mar"."""
    return str(get_day_names("abbreviated" if abbreviated else "wide", locale=_locale(language))[weekday])


def month_name(month: int, language: str | None = "en", abbreviated: bool = False) -> str:
    """The name of a month (1 is January): "December", "Dec"; "diciembre", "dic"."""
    return str(get_month_names("abbreviated" if abbreviated else "wide", locale=_locale(language))[month])


def display_date(day: date, language: str | None = "en") -> str:
    """"Friday, December 25"; "viernes 25 de diciembre"."""
    weekday, month = weekday_name(day.weekday(), language), month_name(day.month, language)
    if language == SPANISH:
        return f"{weekday} {day.day} de {month}"
    return f"{weekday}, {month} {day.day}"


def display_time(when: datetime, language: str | None = "en") -> str:
    """"Tuesday, March 3 at 2 PM"; "martes 3 de marzo, 2 p. m."."""
    clock = clock_text(when.time(), language)
    if language == SPANISH:
        return f"{display_date(when.date(), language)}, {clock}"
    return f"{display_date(when.date(), language)} at {clock}"


def display_slot(when: datetime, tz: ZoneInfo | None = None, language: str | None = "en") -> str:
    """A slot in the clinic's time zone with its abbreviation: "Tuesday, March 3 at 2 PM CST"."""
    local = when.astimezone(tz) if tz is not None else when
    return f"{display_time(local, language)} {local.tzname()}"


def short_slot(when: datetime, tz: ZoneInfo | None = None, language: str | None = "en") -> str:
    """A slot as a button shows it: "Tue, Mar 3, 2 PM"; "mar 3 de marzo, 2 p. m."."""
    local = when.astimezone(tz) if tz is not None else when
    weekday = weekday_name(local.weekday(), language, abbreviated=True)
    clock = clock_text(local.time(), language)
    if language == SPANISH:  # "mar 3 mar" would not say whether "mar" is martes or marzo
        return f"{weekday} {local.day} de {month_name(local.month, language)}, {clock}"
    return f"{weekday}, {month_name(local.month, language, abbreviated=True)} {local.day}, {clock}"

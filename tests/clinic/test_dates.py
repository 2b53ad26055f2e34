"""clinic.dates: days, months and times as a patient reads them, in English and Spanish."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from clinic.dates import clock_text, display_date, display_slot, display_time, short_slot

CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("t", "english", "spanish"),
    [(time(9, 0), "9 AM", "9 a. m."), (time(13, 30), "1:30 PM", "1:30 p. m."), (time(0, 5), "12:05 AM", "12:05 a. m."),
     (time(12, 0), "12 PM", "12 p. m.")],
)
def test_clock_text(t: time, english: str, spanish: str) -> None:
    assert clock_text(t) == english
    assert clock_text(t, "es") == spanish


def test_a_slot_in_spanish() -> None:
    when = datetime(2026, 12, 8, 19, 30, tzinfo=timezone.utc)

    assert display_slot(when, CHICAGO, "es") == "martes 8 de diciembre, 1:30 p. m. CST"
    assert short_slot(when, CHICAGO, "es") == "mar 8 de diciembre, 1:30 p. m."
    assert display_time(datetime(2026, 9, 30, 10, 0), "es") == "miércoles 30 de septiembre, 10 a. m."
    assert display_date(date(2026, 12, 25), "es") == "viernes 25 de diciembre"


@pytest.mark.parametrize("language", ["en", None, "fr"])
def test_english_is_unchanged_for_any_other_language(language: str | None) -> None:
    when = datetime(2026, 12, 8, 19, 30, tzinfo=timezone.utc)

    assert display_slot(when, CHICAGO, language) == "Tuesday, December 8 at 1:30 PM CST"
    assert short_slot(when, CHICAGO, language) == "Tue, Dec 8, 1:30 PM"
    assert display_date(date(2026, 12, 25), language) == "Friday, December 25"

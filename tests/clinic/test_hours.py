"""clinic.hours: open now, next opening, and the words for it."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from clinic.hours import describe_next_opening, is_open, next_opening

CHICAGO = ZoneInfo("America/Chicago")
HOURS = {
    "monday": "08:00-18:00",
    "tuesday": "08:00-18:00",
    "wednesday": "08:00-18:00",
    "thursday": "08:30-18:00",
    "friday": "08:00-16:00",
    "saturday": "09:00-13:00",
    "sunday": "closed",
}


@pytest.fixture
def profile(make_profile):
    return make_profile(hours=HOURS, timezone="America/Chicago")


def at(*args: int) -> datetime:
    """A Chicago wall-clock time. 2026-04-13 is a Monday."""
    return datetime(*args, tzinfo=CHICAGO)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(2026, 4, 13, 7, 59), False),
        (at(2026, 4, 13, 8, 0), True),  # opening time is open
        (at(2026, 4, 13, 17, 59), True),
        (at(2026, 4, 13, 18, 0), False),  # closing time is closed
        (at(2026, 4, 17, 16, 30), False),  # Friday closes early
        (at(2026, 4, 18, 12, 59), True),
        (at(2026, 4, 19, 11, 0), False),  # Sunday closed
        (datetime(2026, 4, 13, 14, 0, tzinfo=timezone.utc), True),  # 9 AM in Chicago
        (datetime(2026, 4, 13, 12, 30, tzinfo=timezone.utc), False),  # 7:30 AM in Chicago
    ],
)
def test_is_open(profile, when: datetime, expected: bool) -> None:
    assert is_open(profile, when) is expected


@pytest.mark.parametrize(
    ("when", "opening", "words"),
    [
        (at(2026, 4, 13, 6, 0), at(2026, 4, 13, 8, 0), "today at 8 AM"),
        (at(2026, 4, 13, 8, 0), at(2026, 4, 14, 8, 0), "tomorrow (Tuesday) at 8 AM"),
        (at(2026, 4, 15, 19, 0), at(2026, 4, 16, 8, 30), "tomorrow (Thursday) at 8:30 AM"),
        (at(2026, 4, 17, 17, 0), at(2026, 4, 18, 9, 0), "tomorrow (Saturday) at 9 AM"),
        (at(2026, 4, 18, 13, 0), at(2026, 4, 20, 8, 0), "Monday at 8 AM"),  # skips closed Sunday
        (datetime(2026, 4, 19, 4, 0, tzinfo=timezone.utc), at(2026, 4, 20, 8, 0), "Monday at 8 AM"),  # Sat 11 PM local
    ],
)
def test_next_opening(profile, when: datetime, opening: datetime, words: str) -> None:
    assert next_opening(profile, when) == opening
    assert describe_next_opening(profile, when) == words


def test_next_opening_across_the_daylight_saving_change(profile) -> None:
    # Clocks go forward on Sunday 2026-03-08 in Chicago; Monday opens at 8 AM local time.
    opening = next_opening(profile, at(2026, 3, 7, 14, 0))

    assert opening == at(2026, 3, 9, 8, 0)
    assert opening.utcoffset().total_seconds() == -5 * 3600


def test_a_clinic_open_one_day_a_week(make_profile) -> None:
    hours = {day: "closed" for day in HOURS} | {"wednesday": "10:00-12:00"}
    profile = make_profile(hours=hours)

    assert next_opening(profile, at(2026, 4, 15, 11, 0)) == at(2026, 4, 22, 10, 0)


def test_a_clinic_that_is_never_open(make_profile) -> None:
    profile = make_profile(hours={day: "closed" for day in HOURS})

    assert next_opening(profile, at(2026, 4, 13, 9, 0)) is None
    assert describe_next_opening(profile, at(2026, 4, 13, 9, 0)) == "as soon as the clinic reopens"
    assert not is_open(profile, at(2026, 4, 13, 9, 0))

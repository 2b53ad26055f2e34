"""clinic.booking.timeparse: preferred visit times in English and Spanish."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from clinic.booking.timeparse import display_date, display_slot, display_time, parse_preferred_time, short_slot
from tests.hours import WEEKDAY_HOURS as HOURS

CHICAGO = ZoneInfo("America/Chicago")
# Wednesday 2026-04-15, 3:00:20 PM in Chicago (seconds like a real clock).
NOW = datetime(2026, 4, 15, 15, 0, 20, tzinfo=CHICAGO)


@pytest.fixture
def profile(make_profile, clinic_raw):
    booking = {**clinic_raw["booking"], "blocked_dates": ["2026-05-25"], "horizon_days": 60}
    return make_profile(hours=HOURS, timezone="America/Chicago", booking=booking)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHICAGO)


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("next Tuesday afternoon", at(4, 21, 14)),  # the example the assistant gives
        ("next Monday afternoon", at(4, 20, 14)),
        ("Wednesday at 10am", at(4, 22, 10)),
        ("friday morning", at(4, 17, 9)),
        ("tomorrow at 10am", at(4, 16, 10)),
        ("tomorrow", at(4, 16, 8)),  # no time: opening time
        ("thursday at noon", at(4, 16, 12)),
        ("saturday 12:30", at(4, 18, 12, 30)),
        ("next monday 9:30am", at(4, 20, 9, 30)),
        ("April 21 at 2pm", at(4, 21, 14)),
        ("3pm", at(4, 15, 15)),
        ("today", at(4, 15, 16)),  # later today: the next full hour
        ("tomorrow afternoon", at(4, 16, 14)),
        ("mañana a las 10", at(4, 16, 10)),
        ("mañana por la mañana", at(4, 16, 9)),
        ("sábado por la mañana", at(4, 18, 9)),
        ("lunes a las 9", at(4, 20, 9)),
        ("el martes a las 3 de la tarde", at(4, 21, 15)),
        ("tomorrow after 3", at(4, 16, 15)),  # an example the issue gives
        ("friday after 2pm", at(4, 17, 14)),
        ("monday before 10", at(4, 20, 9)),
        ("thursday at 3", at(4, 16, 15)),  # "at 3" at a clinic is 3 PM
        ("tuesday afternoon at 4", at(4, 21, 16)),  # the clock time wins over the part of day
        ("how about next wednesday at 10 instead?", at(4, 22, 10)),
        ("do you have anything on friday morning", at(4, 17, 9)),
        ("ok, thursday works for me", at(4, 16, 8)),
        ("mañana después de las 4", at(4, 16, 16)),
    ],
)
def test_a_bookable_time_is_read(profile, text: str, when: datetime) -> None:
    result = parse_preferred_time(text, profile, NOW)

    assert result.problem is None
    assert result.when == when
    assert result.when.tzinfo is not None


@pytest.mark.parametrize("language", ["es", None], ids=["spanish-conversation", "english-conversation"])
@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("el martes en la tarde", at(4, 21, 15)),
        ("el martes por la tarde", at(4, 21, 15)),
        ("el martes que viene en la tarde", at(4, 21, 15)),
        ("¿qué tal el martes en la tarde?", at(4, 21, 15)),
        ("mañana temprano", at(4, 16, 8)),  # early: the opening time
        ("manana temprano", at(4, 16, 8)),  # texted without accents
        ("mañana en la mañana", at(4, 16, 9)),
        ("el próximo lunes", at(4, 20, 8)),
        ("el proximo lunes", at(4, 20, 8)),
        ("el lunes que viene", at(4, 20, 8)),
        ("la semana que viene", at(4, 22, 8)),  # as "next week": a week from today
        ("la próxima semana", at(4, 22, 8)),
        ("pasado mañana", at(4, 17, 8)),
        ("pasado manana a las 11", at(4, 17, 11)),
        ("después de las 4", at(4, 15, 16)),
        ("despues de las 4", at(4, 15, 16)),
        ("el sábado a las 10", at(4, 18, 10)),
        ("el sabado a las 10", at(4, 18, 10)),
        ("el jueves a mediodía", at(4, 16, 12)),
        ("el 21 de abril a las 2", at(4, 21, 14)),
        ("¿tienen algo el jueves en la mañana?", at(4, 16, 9)),
        ("mejor el viernes a las 10, por favor", at(4, 17, 10)),
    ],
)
def test_a_spanish_time_is_read(profile, text: str, when: datetime, language: str | None) -> None:
    # Spanish words are read in any conversation: patients switch languages mid-sentence.
    result = parse_preferred_time(text, profile, NOW, language)

    assert (result.when, result.problem) == (when, None)


@pytest.mark.parametrize("text", ["el viernes a las 7 de la mañana", "friday at 7 in the morning"])
def test_a_morning_clock_time_stays_in_the_morning(profile, text: str) -> None:
    # "at 7" alone is 7 PM at a clinic; said with the morning, it is 7 AM (before Friday's opening).
    result = parse_preferred_time(text, profile, NOW, "es")

    assert (result.when, result.problem) == (at(4, 17, 7), "closed")


@pytest.mark.parametrize("text", ["cuando sea", "me da igual", "no importa"])
def test_a_spanish_any_time_asks_for_a_day(profile, text: str) -> None:
    assert parse_preferred_time(text, profile, NOW, "es").problem == "vague"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Sunday at 10", "closed"),
        ("monday 7pm", "closed"),
        ("saturday 1pm", "closed"),  # Saturday closes at 1 PM
        ("yesterday", "past"),
        ("whenever", "vague"),
        ("any time works", "vague"),
        ("", "vague"),
        ("asdfgh", "unreadable"),
        ("when the moon is blue", "unreadable"),
        ("May 25 at 10am", "blocked"),  # clinic.yml booking.blocked_dates
        ("July 20 at 10am", "too_far"),  # beyond booking.horizon_days
    ],
)
def test_a_time_that_cannot_be_booked_says_why(profile, text: str, problem: str) -> None:
    assert parse_preferred_time(text, profile, NOW).problem == problem


def test_a_closed_time_keeps_the_time_read(profile) -> None:
    result = parse_preferred_time("Sunday at 10", profile, NOW)

    assert result.when == at(4, 19, 10)


def test_tomorrow_is_in_the_clinic_time_zone(profile) -> None:
    # 3 AM UTC on Thursday is still Wednesday evening in Chicago: "tomorrow" is Thursday.
    now = datetime(2026, 4, 16, 3, 0, tzinfo=timezone.utc)

    result = parse_preferred_time("tomorrow at 11am", profile, now)

    assert result.when == at(4, 16, 11)
    assert result.problem is None


def test_display_time() -> None:
    assert display_time(at(4, 21, 14)) == "Tuesday, April 21 at 2 PM"
    assert display_time(at(4, 3, 9, 30)) == "Friday, April 3 at 9:30 AM"


@pytest.mark.parametrize("text", ["asap", "ASAP please", "as soon as possible", "the earliest", "first available",
                                  "lo antes posible", "cuanto antes", "lo más pronto posible", "lo mas pronto"])
def test_as_soon_as_possible_is_now(profile, text: str) -> None:
    result = parse_preferred_time(text, profile, NOW)

    assert (result.when, result.problem, result.earliest) == (NOW, None, True)


def test_slot_displays() -> None:
    assert display_slot(at(4, 21, 14)) == "Tuesday, April 21 at 2 PM CDT"
    assert display_slot(datetime(2026, 1, 6, 20, 0, tzinfo=timezone.utc), CHICAGO) == "Tuesday, January 6 at 2 PM CST"
    assert short_slot(at(4, 21, 14, 30)) == "Tue, Apr 21, 2:30 PM"
    assert display_date(at(12, 25, 0).date()) == "Friday, December 25"

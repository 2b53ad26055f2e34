"""clinic.booking.scheduling.builtin: slots from clinic.yml (time zones, DST, closed days) and bookings."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from clinic.booking.scheduling import SchedulerError, Slot, SlotTaken
from clinic.booking.scheduling.builtin import BuiltinScheduler, day_slots, grid_slot, opening_slots
from clinic.clock import as_utc
from clinic.db import Booking, session_scope
from tests.clinic.booking.scheduling.helpers import CHICAGO, at, booking_settings, draft, slot
from tests.hours import ALWAYS_OPEN, WEEKDAY_HOURS


@pytest.fixture
def profile(make_profile):
    return make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings())


def clock(slots: list[Slot]) -> list[str]:
    return [f"{s.start:%H:%M}" for s in slots]


# ------------------------------------------------------------------ the clinic's slots


def test_a_weekday_has_a_slot_every_half_hour_from_opening_to_closing(profile) -> None:
    slots = day_slots(profile, date(2031, 3, 3))  # a Monday, 8 AM to 6 PM

    assert clock(slots)[0] == "08:00" and clock(slots)[-1] == "17:30" and len(slots) == 20
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)
    assert all(s.start.tzinfo is not None and s.start.utcoffset() == timedelta(hours=-6) for s in slots)


def test_a_slot_must_end_by_closing_time(make_profile) -> None:
    profile = make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings(slot_minutes=45))

    slots = day_slots(profile, date(2031, 3, 8))  # Saturday, 9 AM to 1 PM

    assert clock(slots) == ["09:00", "09:45", "10:30", "11:15", "12:00"]  # 12:45 would end at 1:30


def test_closed_weekdays_and_blocked_dates_have_no_slots(profile) -> None:
    assert day_slots(profile, date(2031, 3, 9)) == []  # Sunday: closed
    assert day_slots(profile, date(2031, 12, 25)) == []  # Thursday, but blocked in clinic.yml
    assert day_slots(profile, date(2031, 12, 24)) != []


def test_a_clinic_open_all_day_has_48_slots(make_profile) -> None:
    profile = make_profile(hours=ALWAYS_OPEN, timezone="America/Chicago", booking=booking_settings())

    slots = day_slots(profile, date(2031, 3, 4))

    assert len(slots) == 48 and clock(slots)[-1] == "23:30"
    assert slots[-1].end == datetime(2031, 3, 5, 0, 0, tzinfo=CHICAGO)


def test_the_day_clocks_go_forward_skips_the_missing_hour(make_profile) -> None:
    profile = make_profile(hours=ALWAYS_OPEN, timezone="America/Chicago", booking=booking_settings())

    slots = day_slots(profile, date(2026, 3, 8))  # 2 AM becomes 3 AM in Chicago

    assert "02:00" not in clock(slots) and "02:30" not in clock(slots)
    assert len(slots) == 46
    assert all(as_utc(s.end) - as_utc(s.start) == timedelta(minutes=30) for s in slots)
    assert [s.start.utcoffset() for s in slots[:2]] == [timedelta(hours=-6)] * 2
    assert slots[-1].start.utcoffset() == timedelta(hours=-5)


def test_the_day_clocks_go_back_offers_a_repeated_time_once(make_profile) -> None:
    profile = make_profile(hours=ALWAYS_OPEN, timezone="America/Chicago", booking=booking_settings())

    slots = day_slots(profile, date(2026, 11, 1))  # 1 AM to 2 AM happens twice

    assert len(clock(slots)) == len(set(clock(slots))) == 48
    assert all(as_utc(s.end) - as_utc(s.start) == timedelta(minutes=30) for s in slots)
    assert len({as_utc(s.start) for s in slots}) == 48


def test_opening_time_is_local_on_both_sides_of_a_dst_change(profile) -> None:
    before = day_slots(profile, date(2026, 3, 2))[0].start  # Monday before DST starts
    after = day_slots(profile, date(2026, 3, 9))[0].start  # Monday after

    assert (before.hour, after.hour) == (8, 8)
    assert (as_utc(before).hour, as_utc(after).hour) == (14, 13)


def test_opening_slots_are_bounded_and_take_any_time_zone(profile) -> None:
    start = datetime(2031, 3, 3, 20, 0, tzinfo=timezone.utc)  # Monday 2 PM in Chicago
    end = datetime(2031, 3, 4, 15, 0, tzinfo=timezone.utc)  # Tuesday 9 AM in Chicago

    slots = opening_slots(profile, start, end)

    assert slots[0].start == at(2031, 3, 3, 14) and slots[-1].start == at(2031, 3, 4, 8, 30)
    assert len(slots) == 8 + 2


def test_slots_follow_the_clinics_own_time_zone(make_profile) -> None:
    london = make_profile(hours=WEEKDAY_HOURS, timezone="Europe/London", booking=booking_settings())

    first = day_slots(london, date(2031, 7, 7))[0].start

    assert first == datetime(2031, 7, 7, 8, 0, tzinfo=ZoneInfo("Europe/London"))
    assert as_utc(first).hour == 7  # British Summer Time


def test_grid_slot_finds_only_real_slot_starts(profile) -> None:
    assert grid_slot(profile, at(2031, 3, 3, 10, 30)) == slot(at(2031, 3, 3, 10, 30))
    assert grid_slot(profile, at(2031, 3, 3, 10, 15)) is None
    assert grid_slot(profile, at(2031, 3, 9, 10)) is None  # Sunday


# ------------------------------------------------------------------ bookings in the clinic database


def test_a_booked_slot_is_no_longer_open(database_url: str, profile) -> None:
    scheduler = BuiltinScheduler(profile, database_url)
    monday = (at(2031, 3, 3, 8), at(2031, 3, 3, 10))

    placed = scheduler.book(draft(at(2031, 3, 3, 9)))

    assert placed.confirmed and placed.appointment.kind == "booking" and len(placed.appointment.code) == 6
    assert clock(scheduler.open_slots(*monday)) == ["08:00", "08:30", "09:30"]


def test_parallel_chairs_book_the_same_time_until_full(database_url: str, make_profile) -> None:
    profile = make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings(chairs=2))
    scheduler = BuiltinScheduler(profile, database_url)
    nine = at(2031, 3, 3, 9)

    first = scheduler.book(draft(nine, conversation_id="a"))
    assert "09:00" in clock(scheduler.open_slots(nine, nine + timedelta(hours=1)))  # one chair still free
    second = scheduler.book(draft(nine, conversation_id="b"))
    with pytest.raises(SlotTaken):
        scheduler.book(draft(nine, conversation_id="c"))

    with session_scope(database_url) as session:
        chairs = sorted(session.execute(select(Booking.chair)).scalars())
    assert chairs == [1, 2] and first.appointment.code != second.appointment.code
    assert clock(scheduler.open_slots(nine, nine + timedelta(hours=1))) == ["09:30"]


def test_a_time_that_is_not_a_slot_cannot_be_booked(database_url: str, profile) -> None:
    with pytest.raises(SlotTaken):
        BuiltinScheduler(profile, database_url).book(draft(at(2031, 3, 3, 9, 10)))


def test_cancelling_frees_the_chair(database_url: str, profile) -> None:
    scheduler = BuiltinScheduler(profile, database_url)
    placed = scheduler.book(draft(at(2031, 3, 3, 9)))

    scheduler.cancel(placed.appointment, "patient")

    again = scheduler.book(draft(at(2031, 3, 3, 9), conversation_id="conv-2"))
    assert again.confirmed
    with session_scope(database_url) as session:
        statuses = sorted(session.execute(select(Booking.status)).scalars())
    assert statuses == ["booked", "cancelled"]


def test_rescheduling_moves_the_booking_and_keeps_its_code(database_url: str, profile) -> None:
    scheduler = BuiltinScheduler(profile, database_url)
    placed = scheduler.book(draft(at(2031, 3, 3, 9)))
    scheduler.book(draft(at(2031, 3, 3, 11), conversation_id="other"))

    with pytest.raises(SlotTaken):
        scheduler.reschedule(placed.appointment, slot(at(2031, 3, 3, 11)))
    moved = scheduler.reschedule(placed.appointment, slot(at(2031, 3, 4, 14)))

    assert moved.appointment.code == placed.appointment.code
    assert moved.appointment.start == as_utc(at(2031, 3, 4, 14))
    assert "09:00" in clock(scheduler.open_slots(at(2031, 3, 3, 9), at(2031, 3, 3, 10)))


def test_a_cancelled_booking_cannot_be_moved(database_url: str, profile) -> None:
    scheduler = BuiltinScheduler(profile, database_url)
    placed = scheduler.book(draft(at(2031, 3, 3, 9)))
    scheduler.cancel(placed.appointment, "patient")

    with pytest.raises(SchedulerError):
        scheduler.reschedule(placed.appointment, slot(at(2031, 3, 4, 14)))


def test_bookings_are_stored_in_utc_with_the_patients_details(database_url: str, profile) -> None:
    BuiltinScheduler(profile, database_url).book(draft(at(2031, 3, 3, 9), email=None))

    with session_scope(database_url) as session:
        row = session.execute(select(Booking)).scalar_one()
        assert (row.full_name, row.phone, row.email, row.visit_reason, row.patient_type, row.sms_consent) == (
            "Ana María López", "+13125550123", None, "depression", "new", True)
        assert as_utc(row.starts_at) == datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc)
        assert (row.backend, row.chair, row.status) == ("builtin", 1, "booked")


def test_contact_details_are_not_logged(database_url: str, profile, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="clinic")

    BuiltinScheduler(profile, database_url).book(draft(at(2031, 3, 3, 9)))

    assert "booking" in caplog.text
    assert "Ana" not in caplog.text and "5550123" not in caplog.text and "example.com" not in caplog.text

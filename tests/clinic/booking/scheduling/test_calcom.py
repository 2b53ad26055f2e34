"""clinic.booking.scheduling.calcom: against a local server with Cal.com API v2's shapes and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from clinic.booking.scheduling import SchedulerError, SchedulerUnavailable, SlotTaken, get_scheduler
from clinic.booking.scheduling.calcom import CalcomClient, CalcomScheduler, parse_time
from clinic.clock import as_utc
from clinic.db import Booking, session_scope
from tests.clinic.booking.scheduling.helpers import at, booking_settings, draft, slot
from tests.clinic.booking.scheduling.servers import API_KEY, FakeCalcom, error
from tests.hours import WEEKDAY_HOURS

NINE, TEN, ELEVEN = at(2031, 3, 3, 9), at(2031, 3, 3, 10), at(2031, 3, 3, 11)


@pytest.fixture
def calcom() -> Iterator[FakeCalcom]:
    server = FakeCalcom(free={as_utc(NINE), as_utc(TEN), as_utc(ELEVEN)}).start()
    yield server
    server.stop()


@pytest.fixture
def profile(make_profile):
    return make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago",
                        booking=booking_settings(backend="calcom", calcom_event_type_id=4242))


@pytest.fixture
def scheduler(calcom: FakeCalcom, profile, sqlite_url: str) -> CalcomScheduler:
    return CalcomScheduler(profile, CalcomClient(API_KEY, calcom.url, timeout=2), sqlite_url)


# ------------------------------------------------------------------ slots


def test_slots_are_asked_for_with_the_documented_request(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    found = scheduler.open_slots(at(2031, 3, 3, 0), at(2031, 3, 4, 0))

    assert [s.start for s in found] == [NINE, TEN, ELEVEN]
    assert all(s.end - s.start == timedelta(minutes=30) and s.start.tzinfo is not None for s in found)
    [request] = calcom.requests
    assert (request.method, request.path) == ("GET", "/v2/slots")
    assert request.query == {"eventTypeId": "4242", "start": "2031-03-03T06:00:00.000Z",
                             "end": "2031-03-04T06:00:00.000Z", "timeZone": "America/Chicago"}
    assert request.headers["cal-api-version"] == "2024-09-04"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_slot_times_are_read_with_their_offsets() -> None:
    assert parse_time("2031-03-03T09:00:00.000-06:00") == NINE
    assert parse_time("2031-03-03T15:00:00.000Z") == NINE
    with pytest.raises(ValueError):
        parse_time("2031-03-03T15:00:00")


def test_slots_with_ends_and_the_older_shape_are_read(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    calcom.fail_with = (200, {"status": "success", "data": {"slots": {"2031-03-03": [
        {"time": "2031-03-03T09:00:00.000-06:00"},
        {"start": "2031-03-03T10:00:00.000-06:00", "end": "2031-03-03T10:45:00.000-06:00"},
    ]}}})

    found = scheduler.open_slots(at(2031, 3, 3, 0), at(2031, 3, 4, 0))

    assert [(s.start, s.end) for s in found] == [(NINE, NINE + timedelta(minutes=30)), (TEN, at(2031, 3, 3, 10, 45))]


# ------------------------------------------------------------------ bookings


def test_booking_posts_the_documented_body_and_records_it_locally(scheduler: CalcomScheduler, calcom: FakeCalcom,
                                                                  sqlite_url: str) -> None:
    placed = scheduler.book(draft(TEN, channel="twilio"))

    request = calcom.requests[-1]
    assert (request.method, request.path, request.headers["cal-api-version"]) == ("POST", "/v2/bookings", "2024-08-13")
    assert request.json() == {
        "start": "2031-03-03T16:00:00.000Z",
        "eventTypeId": 4242,
        "attendee": {"name": "Ana María López", "email": "ana@example.com", "timeZone": "America/Chicago",
                     "phoneNumber": "+13125550123", "language": "en"},
        "metadata": {"source": "clinic-assistant", "channel": "twilio", "patientType": "new", "smsReminders": "yes"},
    }
    assert placed.confirmed and placed.appointment.start == as_utc(TEN)
    with session_scope(sqlite_url) as session:
        row = session.execute(select(Booking)).scalar_one()
        assert (row.backend, row.chair, row.status, row.code) == ("calcom", None, "booked", placed.appointment.code)
        assert row.external_uid in calcom.bookings


def test_a_patient_without_email_is_booked_by_phone(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    scheduler.book(draft(TEN, email=None))

    attendee = calcom.requests[-1].json()["attendee"]
    assert "email" not in attendee and attendee["phoneNumber"] == "+13125550123"


def test_a_time_someone_else_booked_is_slot_taken(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    scheduler.book(draft(TEN))

    with pytest.raises(SlotTaken):
        scheduler.book(draft(TEN, conversation_id="conv-2"))


def test_a_booking_the_host_must_confirm_is_pending(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    calcom.pending = True

    placed = scheduler.book(draft(TEN))

    assert placed.appointment.status == "pending" and not placed.confirmed


def test_rescheduling_follows_calcoms_new_uid(scheduler: CalcomScheduler, calcom: FakeCalcom, sqlite_url: str) -> None:
    placed = scheduler.book(draft(TEN))
    old_uid = placed.appointment.external_uid

    moved = scheduler.reschedule(placed.appointment, slot(ELEVEN))

    request = calcom.requests[-1]
    assert request.path == f"/v2/bookings/{old_uid}/reschedule"
    assert request.json() == {"start": "2031-03-03T17:00:00.000Z",
                              "reschedulingReason": "The patient asked to move it through the clinic assistant"}
    assert moved.appointment.code == placed.appointment.code and moved.appointment.start == as_utc(ELEVEN)
    assert moved.appointment.external_uid != old_uid and calcom.bookings[old_uid]["status"] == "cancelled"


def test_rescheduling_to_a_taken_time_is_slot_taken(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    placed = scheduler.book(draft(TEN))
    scheduler.book(draft(ELEVEN, conversation_id="conv-2"))

    with pytest.raises(SlotTaken):
        scheduler.reschedule(placed.appointment, slot(ELEVEN))


def test_cancelling_in_calcom_and_locally(scheduler: CalcomScheduler, calcom: FakeCalcom, sqlite_url: str) -> None:
    placed = scheduler.book(draft(TEN))

    scheduler.cancel(placed.appointment, "patient")

    request = calcom.requests[-1]
    assert request.path == f"/v2/bookings/{placed.appointment.external_uid}/cancel"
    assert request.json() == {"cancellationReason": "Cancelled by the patient"}
    assert as_utc(TEN) in calcom.free
    with session_scope(sqlite_url) as session:
        assert session.execute(select(Booking.status)).scalar_one() == "cancelled"


def test_cancelling_a_booking_calcom_does_not_know_is_an_error(scheduler: CalcomScheduler, calcom: FakeCalcom) -> None:
    placed = scheduler.book(draft(TEN))
    calcom.bookings.clear()

    with pytest.raises(SchedulerError, match="HTTP 404"):
        scheduler.cancel(placed.appointment, "patient")


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("failure", "kind", "message"),
    [
        (error(500, "InternalServerErrorException", "boom"), SchedulerUnavailable, "HTTP 500"),
        (error(503, "ServiceUnavailableException", "down"), SchedulerUnavailable, "HTTP 503"),
        (error(429, "ThrottlerException", "Too Many Requests"), SchedulerUnavailable, "HTTP 429"),
        (error(400, "BadRequestException", "attendee.email must be an email: ana@example"), SchedulerError,
         "HTTP 400, BadRequestException"),
        (error(403, "ForbiddenException", "no access"), SchedulerError, "refused the API key"),
        ((200, b"<html>not json</html>"), SchedulerError, "not JSON"),
        ((200, {"status": "error"}), SchedulerError, "without success data"),
        ((201, {"status": "success", "data": {"id": 1}}), SchedulerError, "without uid"),
    ],
)
def test_error_answers_become_scheduler_errors_without_details(scheduler: CalcomScheduler, calcom: FakeCalcom,
                                                               failure, kind, message: str) -> None:
    calcom.fail_with = failure

    with pytest.raises(kind, match=message) as raised:
        scheduler.book(draft(TEN))

    assert "ana@example" not in str(raised.value) and "127.0.0.1" not in str(raised.value)
    if kind is SchedulerError:  # a refusal: trying again would not help
        assert not isinstance(raised.value, SchedulerUnavailable)


def test_a_wrong_api_key_is_refused(calcom: FakeCalcom, profile, sqlite_url: str) -> None:
    scheduler = CalcomScheduler(profile, CalcomClient("cal_wrong", calcom.url), sqlite_url)

    with pytest.raises(SchedulerError, match="refused the API key .HTTP 401") as raised:
        scheduler.open_slots(NINE, ELEVEN)

    assert "cal_wrong" not in str(raised.value)


def test_an_unreachable_calcom_is_unavailable(profile, sqlite_url: str) -> None:
    from tests.clinic.booking.scheduling.servers import free_port

    scheduler = CalcomScheduler(profile, CalcomClient(API_KEY, f"http://127.0.0.1:{free_port()}"), sqlite_url)

    with pytest.raises(SchedulerUnavailable, match="unreachable"):
        scheduler.open_slots(NINE, ELEVEN)


def test_a_slow_calcom_times_out(calcom: FakeCalcom, profile, sqlite_url: str) -> None:
    calcom.delay = 1.0
    scheduler = CalcomScheduler(profile, CalcomClient(API_KEY, calcom.url, timeout=0.3), sqlite_url)

    with pytest.raises(SchedulerUnavailable, match="timed out"):
        scheduler.open_slots(NINE, ELEVEN)


def test_a_booking_that_cannot_be_recorded_is_cancelled_in_calcom(scheduler: CalcomScheduler, calcom: FakeCalcom,
                                                                  tmp_path) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    broken = f"sqlite:///{tmp_path / 'no-tables.db'}"
    with pytest.raises(SQLAlchemyError):
        scheduler.book(draft(TEN), database_url=broken)

    assert [b["status"] for b in calcom.bookings.values()] == ["cancelled"]
    assert calcom.requests[-1].path.endswith("/cancel")


# ------------------------------------------------------------------ settings


def test_the_backend_comes_from_clinic_yml_and_the_key_from_the_environment(profile, calcom: FakeCalcom) -> None:
    scheduler = get_scheduler(profile, {"CALCOM_API_KEY": API_KEY, "CALCOM_API_URL": calcom.url})

    assert isinstance(scheduler, CalcomScheduler)
    assert [s.start for s in scheduler.open_slots(at(2031, 3, 3, 0), at(2031, 3, 4, 0))] == [NINE, TEN, ELEVEN]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "needs CALCOM_API_KEY"),
        ({"CALCOM_API_KEY": "  "}, "needs CALCOM_API_KEY"),
        ({"CALCOM_API_KEY": API_KEY, "CALCOM_API_URL": "ftp://cal.example"}, "CALCOM_API_URL must be an https"),
        ({"CALCOM_API_KEY": API_KEY, "CALCOM_API_URL": "http://cal.example"}, "CALCOM_API_URL must be an https"),
    ],
)
def test_missing_or_unsafe_settings_are_named(profile, environ: dict[str, str], message: str) -> None:
    with pytest.raises(SchedulerError, match=message):
        get_scheduler(profile, environ)


def test_timestamps_are_sent_in_utc() -> None:
    from clinic.booking.scheduling.calcom import _iso_utc

    assert _iso_utc(datetime(2031, 3, 3, 9, 0, tzinfo=timezone(timedelta(hours=-6)))) == "2031-03-03T15:00:00.000Z"

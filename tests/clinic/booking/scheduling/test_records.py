"""clinic.booking.scheduling.records: requests for staff and finding a booking by phone and code."""

from __future__ import annotations

from datetime import datetime, timezone

from clinic.booking.scheduling.builtin import BuiltinScheduler
from clinic.booking.scheduling.records import add_request, find
from clinic.db import BookingRequest, session_scope
from tests.clinic.booking.scheduling.helpers import at, booking_settings, draft
from tests.hours import WEEKDAY_HOURS

BEFORE = datetime(2031, 3, 1, tzinfo=timezone.utc)


def test_a_request_keeps_everything_the_patient_entered(database_url: str) -> None:
    request = add_request(draft(at(2031, 3, 3, 10)), backend="calcom", fallback_reason="backend_unavailable",
                          database_url=database_url)

    with session_scope(database_url) as session:
        row = session.get(BookingRequest, request.id)
        assert (row.full_name, row.phone, row.email, row.visit_reason, row.patient_type, row.sms_consent) == (
            "Ana María López", "+13125550123", "ana@example.com", "depression", "new", True)
        assert (row.kind, row.status, row.backend, row.fallback_reason, row.code) == (
            "book", "requested", "calcom", "backend_unavailable", request.code)
        assert row.preferred_time_text == "Monday at 10 AM"


def test_a_booking_is_found_by_phone_and_code_only(database_url: str, make_profile) -> None:
    profile = make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings())
    placed = BuiltinScheduler(profile, database_url).book(draft(at(2031, 3, 3, 10)))
    code = placed.appointment.code

    assert find("+13125550123", code, now=BEFORE, database_url=database_url) == placed.appointment
    assert find("+13125550000", code, now=BEFORE, database_url=database_url) is None
    assert find("+13125550123", "ZZZZZZ", now=BEFORE, database_url=database_url) is None
    assert find("+13125550123", code, now=datetime(2031, 3, 4, tzinfo=timezone.utc), database_url=database_url) is None


def test_an_open_request_is_found_and_a_cancelled_one_is_not(database_url: str) -> None:
    request = add_request(draft(at(2031, 3, 3, 10)), backend="webhook", database_url=database_url)

    found = find("+13125550123", request.code, now=BEFORE, database_url=database_url)
    assert found is not None and found.kind == "request" and found.id == request.id

    with session_scope(database_url) as session:
        session.get(BookingRequest, request.id).status = "cancelled"
    assert find("+13125550123", request.code, now=BEFORE, database_url=database_url) is None

"""clinic.booking.service: reading answers, offers, booking with fallback, changes, and the staff functions."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from clinic.booking import service as booking
from clinic.booking.scheduling import SchedulerError, SchedulerUnavailable, Slot
from clinic.booking.scheduling.builtin import BuiltinScheduler
from clinic.booking.service import BookingError
from clinic.clock import as_utc
from clinic.db import Booking, BookingRequest, session_scope
from tests.clinic.booking.requests import create_request
from tests.clinic.booking.scheduling.helpers import at, booking_settings, draft, slot
from tests.hours import WEEKDAY_HOURS

WHEN = datetime(2026, 4, 21, 14, 0, tzinfo=ZoneInfo("America/Chicago"))
NOW = datetime(2031, 3, 1, 12, 0, tzinfo=timezone.utc)  # Saturday, March 1 2031, 6 AM in Chicago
MONDAY_TEN = at(2031, 3, 3, 10)
REASONS = ["depression", "anxiety", "PTSD", "OCD", "chronic pain"]


@pytest.fixture
def profile(make_profile):
    return make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings())


class Failing:
    """A backend that is down (or refuses everything)."""

    name = "calcom"
    books_instantly = True

    def __init__(self, error: SchedulerError) -> None:
        self.error = error

    def open_slots(self, start, end, database_url=None):
        raise self.error

    def book(self, draft, database_url=None):
        raise self.error

    def reschedule(self, appointment, slot, database_url=None):
        raise self.error

    def cancel(self, appointment, by, database_url=None):
        raise self.error


def starts(slots: list[Slot]) -> list[datetime]:
    return [s.start for s in slots]


# ------------------------------------------------------------------ reading answers


@pytest.mark.parametrize(
    "text", ["stop", "Never mind", "nevermind!", "cancel", "forget it", "I changed my mind", "bye"]
)
def test_a_whole_message_stop_leaves_the_booking(text: str) -> None:
    assert booking.is_stop(text)


@pytest.mark.parametrize("text", ["stop texting me at night", "can I cancel later?", "no", "mind the gap"])
def test_a_stop_word_inside_a_sentence_is_not_a_stop(text: str) -> None:
    assert not booking.is_stop(text)


@pytest.mark.parametrize(
    ("text", "answer"),
    [("yes", True), ("Yes please", True), ("sure, text me", True), ("sí", True), ("ok", True),
     ("no", False), ("no thanks", False), ("nope", False), ("not really", False), ("I'd rather not", False),
     ("maybe", None), ("what?", None), ("yes no", None)],
)
def test_yes_and_no(text: str, answer: bool | None) -> None:
    assert booking.read_yes_no(text) is answer


@pytest.mark.parametrize("text", ["skip", "no", "No thanks", "none", "I don't have one", "no email", "n/a"])
def test_skipping_the_email(text: str) -> None:
    assert booking.read_skip(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("yes", "new"), ("first time", "new"), ("I'm new", "new"), ("never been", "new"), ("no", "returning"),
     ("I've been there before", "returning"), ("returning patient", "returning"), ("hmm", None)],
)
def test_new_or_returning(text: str, kind: str | None) -> None:
    assert booking.read_patient_type(text) == kind


@pytest.mark.parametrize(
    ("text", "reason"),
    [("depression", "depression"), ("it's for my Depression", "depression"), ("ptsd", "PTSD"),
     ("trauma from the army", "PTSD"), ("anxiety and panic attacks", "anxiety"), ("OCD", "OCD"),
     ("chronic pain", "chronic pain"), ("fibromyalgia", "chronic pain"), ("depresion", "depression"),
     ("anxeity", "anxiety"), ("something else", "other"), ("insomnia", "other"),
     ("how much does the consultation cost and can I pay with my HSA card?", None)],
)
def test_visit_reasons_come_from_the_clinics_conditions(text: str, reason: str | None) -> None:
    assert booking.read_visit_reason(text, REASONS) == reason


def test_a_reason_the_clinic_does_not_treat_is_other() -> None:
    assert booking.read_visit_reason("ocd", ["depression", "anxiety"]) == "other"


OFFERED = [slot(at(2031, 3, 3, 14)), slot(at(2031, 3, 3, 14, 30)), slot(at(2031, 3, 4, 9))]


@pytest.mark.parametrize(
    ("text", "choice"),
    [("1", 0), ("2", 1), ("#3", 2), ("the second one", 1), ("option 3", 2), ("first", 0),
     ("2:30", 1), ("2:30pm", 1), ("tuesday", 2), ("Tuesday at 9am", 2), ("2pm", 0),
     (OFFERED[1].start.isoformat(), 1), (OFFERED[2].key, 2),
     ("other times", "other"), ("none of these", "other"), ("do you have anything later", "other"),
     ("two", 1), ("the third one", 2), ("4", None), ("5pm", None), ("banana", None), ("1 or 2", None)],
)
def test_choosing_an_offered_slot(text: str, choice) -> None:
    assert booking.read_slot_choice(text, OFFERED) == choice


# ------------------------------------------------------------------ offers


def test_offers_are_the_three_open_slots_closest_to_the_preferred_time(profile, sqlite_url: str) -> None:
    found = booking.offers(profile, at(2031, 3, 4, 14), now=NOW, scheduler=BuiltinScheduler(profile, sqlite_url))

    assert starts(found) == [at(2031, 3, 4, 13, 30), at(2031, 3, 4, 14), at(2031, 3, 4, 14, 30)]


def test_offers_skip_booked_and_excluded_slots(profile, sqlite_url: str) -> None:
    scheduler = BuiltinScheduler(profile, sqlite_url)
    scheduler.book(draft(at(2031, 3, 4, 14)))

    found = booking.offers(profile, at(2031, 3, 4, 14), now=NOW, scheduler=scheduler,
                           exclude={slot(at(2031, 3, 4, 13, 30)).key})

    assert starts(found) == [at(2031, 3, 4, 13), at(2031, 3, 4, 14, 30), at(2031, 3, 4, 15)]


def test_a_preferred_time_when_closed_gets_the_nearest_open_slots(profile, sqlite_url: str) -> None:
    found = booking.offers(profile, at(2031, 3, 7, 17), now=NOW, scheduler=BuiltinScheduler(profile, sqlite_url))

    assert starts(found) == [at(2031, 3, 7, 14, 30), at(2031, 3, 7, 15), at(2031, 3, 7, 15, 30)]  # Friday closes at 4


def test_offers_respect_the_notice_period(profile, sqlite_url: str) -> None:
    now = datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc)  # Monday 9 AM in Chicago: earliest 11 AM

    found = booking.offers(profile, now, now=now, scheduler=BuiltinScheduler(profile, sqlite_url))

    assert starts(found) == [at(2031, 3, 3, 11), at(2031, 3, 3, 11, 30), at(2031, 3, 3, 12)]


def test_when_nothing_is_free_nearby_the_whole_horizon_is_searched(make_profile, sqlite_url: str) -> None:
    only_mondays = {**{d: "closed" for d in WEEKDAY_HOURS}, "monday": "09:00-10:00"}
    profile = make_profile(hours=only_mondays, timezone="America/Chicago",
                           booking=booking_settings(blocked_dates=["2031-03-03", "2031-03-10", "2031-03-17"]))

    found = booking.offers(profile, at(2031, 3, 3, 9), now=NOW, scheduler=BuiltinScheduler(profile, sqlite_url))

    assert starts(found) == [at(2031, 3, 24, 9), at(2031, 3, 24, 9, 30), at(2031, 3, 31, 9)]


def test_a_backend_that_cannot_list_slots_raises(profile) -> None:
    with pytest.raises(SchedulerUnavailable):
        booking.offers(profile, MONDAY_TEN, now=NOW, scheduler=Failing(SchedulerUnavailable("down")))


# ------------------------------------------------------------------ booking


def test_booking_a_free_slot(profile, sqlite_url: str) -> None:
    outcome = booking.book(draft(MONDAY_TEN), profile=profile, scheduler=BuiltinScheduler(profile, sqlite_url),
                           now=NOW, database_url=sqlite_url)

    assert outcome.status == "booked" and outcome.appointment.start == as_utc(MONDAY_TEN)
    assert not outcome.is_fallback and outcome.offers == []


def test_a_taken_slot_gives_other_offers(profile, sqlite_url: str) -> None:
    scheduler = BuiltinScheduler(profile, sqlite_url)
    booking.book(draft(MONDAY_TEN), profile=profile, scheduler=scheduler, now=NOW, database_url=sqlite_url)

    outcome = booking.book(draft(MONDAY_TEN, conversation_id="conv-2"), profile=profile, scheduler=scheduler,
                           now=NOW, database_url=sqlite_url)

    assert outcome.status == "taken" and outcome.appointment is None
    assert starts(outcome.offers) == [at(2031, 3, 3, 9), at(2031, 3, 3, 9, 30), at(2031, 3, 3, 10, 30)]


def test_a_slot_outside_the_bookable_window_is_offered_again(profile, sqlite_url: str) -> None:
    outcome = booking.book(draft(at(2031, 3, 1, 7)), profile=profile, scheduler=BuiltinScheduler(profile, sqlite_url),
                           now=NOW, database_url=sqlite_url)  # an hour from now: under the 2-hour notice

    assert outcome.status == "taken" and outcome.offers


@pytest.mark.parametrize(
    ("error", "reason"),
    [(SchedulerUnavailable("Cal.com answered HTTP 503"), "backend_unavailable"),
     (SchedulerError("Cal.com refused the request (HTTP 400)"), "backend_error")],
)
def test_a_failing_backend_stores_a_request_for_staff(profile, sqlite_url: str, error, reason: str) -> None:
    outcome = booking.book(draft(MONDAY_TEN), profile=profile, scheduler=Failing(error), now=NOW,
                           database_url=sqlite_url)

    assert outcome.status == "requested" and outcome.fallback_reason == reason and len(outcome.appointment.code) == 6
    [request] = booking.list_requests(database_url=sqlite_url)
    assert (request.kind, request.backend, request.fallback_reason, request.full_name, request.email) == (
        "book", "calcom", reason, "Ana María López", "ana@example.com")
    assert request.preferred_time == as_utc(MONDAY_TEN) and request.visit_reason == "depression"


def test_a_backend_without_its_settings_stores_a_request(make_profile, sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALCOM_API_KEY", raising=False)
    profile = make_profile(booking=booking_settings(backend="calcom", calcom_event_type_id=7))

    outcome = booking.book(draft(MONDAY_TEN), profile=profile, now=NOW, database_url=sqlite_url)

    assert (outcome.status, outcome.fallback_reason) == ("requested", "backend_not_configured")


# ------------------------------------------------------------------ finding, moving, cancelling


@pytest.fixture
def booked(profile, sqlite_url: str):
    scheduler = BuiltinScheduler(profile, sqlite_url)
    outcome = booking.book(draft(MONDAY_TEN), profile=profile, scheduler=scheduler, now=NOW, database_url=sqlite_url)
    return outcome.appointment, scheduler


@pytest.mark.parametrize("typed", ["{code}", "{lower}", "my code is {code}", "{first} {last}"])
def test_a_booking_is_found_by_phone_and_code_as_typed(booked, sqlite_url: str, typed: str) -> None:
    appointment, _ = booked
    code = appointment.code
    text = typed.format(code=code, lower=code.lower(), first=code[:3], last=code[3:])

    assert booking.find_appointment("+13125550123", text, now=NOW, database_url=sqlite_url) == appointment
    assert booking.find_appointment("+13125550124", text, now=NOW, database_url=sqlite_url) is None


def test_moving_a_booking(booked, profile, sqlite_url: str) -> None:
    appointment, scheduler = booked

    outcome = booking.reschedule(appointment, slot(at(2031, 3, 5, 11)), profile=profile, scheduler=scheduler, now=NOW,
                                 database_url=sqlite_url)

    assert outcome.status == "booked" and outcome.appointment.code == appointment.code
    assert [b.start for b in booking.list_bookings(database_url=sqlite_url)] == [as_utc(at(2031, 3, 5, 11))]


def test_moving_to_a_taken_slot_offers_others_but_not_the_current_one(booked, profile, sqlite_url: str) -> None:
    appointment, scheduler = booked
    booking.book(draft(at(2031, 3, 3, 10, 30), conversation_id="other"), profile=profile, scheduler=scheduler,
                 now=NOW, database_url=sqlite_url)

    outcome = booking.reschedule(appointment, slot(at(2031, 3, 3, 10, 30)), profile=profile, scheduler=scheduler,
                                 now=NOW, database_url=sqlite_url)

    assert outcome.status == "taken"
    assert as_utc(MONDAY_TEN) not in [as_utc(s.start) for s in outcome.offers]
    assert as_utc(at(2031, 3, 3, 10, 30)) not in [as_utc(s.start) for s in outcome.offers]


def test_a_backend_failing_to_move_stores_a_reschedule_request(booked, profile, sqlite_url: str) -> None:
    appointment, _ = booked

    outcome = booking.reschedule(appointment, slot(at(2031, 3, 5, 11)), profile=profile,
                                 scheduler=Failing(SchedulerUnavailable("down")), now=NOW, database_url=sqlite_url)

    assert (outcome.status, outcome.fallback_reason) == ("requested", "backend_unavailable")
    [request] = booking.list_requests(database_url=sqlite_url)
    assert (request.kind, request.booking_id, request.code) == ("reschedule", appointment.id, None)
    assert request.preferred_time == as_utc(at(2031, 3, 5, 11))


def test_cancelling_a_booking(booked, profile, sqlite_url: str) -> None:
    appointment, scheduler = booked

    outcome = booking.cancel(appointment, profile=profile, scheduler=scheduler, database_url=sqlite_url)

    assert outcome.status == "cancelled"
    assert booking.list_bookings(database_url=sqlite_url) == []
    [cancelled] = booking.list_bookings(status="cancelled", database_url=sqlite_url)
    assert cancelled.cancelled_by == "patient"


def test_a_backend_failing_to_cancel_stores_a_cancel_request(booked, profile, sqlite_url: str) -> None:
    appointment, _ = booked

    outcome = booking.cancel(appointment, profile=profile, scheduler=Failing(SchedulerError("refused")),
                             database_url=sqlite_url)

    assert outcome.status == "requested"
    [request] = booking.list_requests(database_url=sqlite_url)
    assert (request.kind, request.booking_id) == ("cancel", appointment.id)
    assert [b.status for b in booking.list_bookings(database_url=sqlite_url)] == ["booked"]


def test_a_fallback_request_is_moved_and_cancelled_in_the_database(profile, sqlite_url: str) -> None:
    requested = booking.book(draft(MONDAY_TEN), profile=profile, scheduler=Failing(SchedulerUnavailable("down")),
                             now=NOW, database_url=sqlite_url).appointment

    moved = booking.reschedule(requested, slot(at(2031, 3, 5, 11)), profile=profile, now=NOW, database_url=sqlite_url)
    cancelled = booking.cancel(moved.appointment, profile=profile, database_url=sqlite_url)

    assert moved.status == "requested" and moved.appointment.start == as_utc(at(2031, 3, 5, 11))
    assert cancelled.status == "cancelled"
    assert [r.status for r in booking.list_requests(status=None, database_url=sqlite_url)] == ["cancelled"]


# ------------------------------------------------------------------ staff console


def test_staff_list_bookings_by_time_and_status(profile, sqlite_url: str) -> None:
    scheduler = BuiltinScheduler(profile, sqlite_url)
    for start, conversation in ((at(2031, 3, 4, 9), "b"), (at(2031, 3, 3, 9), "a"), (at(2031, 3, 5, 9), "c")):
        booking.book(draft(start, conversation_id=conversation), profile=profile, scheduler=scheduler, now=NOW,
                     database_url=sqlite_url)

    views = booking.list_bookings(database_url=sqlite_url)
    window = booking.list_bookings(start=at(2031, 3, 4, 0), end=at(2031, 3, 5, 0), database_url=sqlite_url)

    assert [v.conversation_id for v in views] == ["a", "b", "c"]
    assert [v.conversation_id for v in window] == ["b"]
    assert views[0].full_name == "Ana María López" and views[0].chair == 1 and views[0].start.tzinfo is not None


def test_staff_confirm_a_request(sqlite_url: str) -> None:
    request_id = create_request(conversation_id="conv-1", channel="twilio", full_name="Ana", phone="+13125550123",
                                preferred_time_text="Tuesday", preferred_time=WHEN, database_url=sqlite_url)

    view = booking.confirm_request(request_id, staff="nurse.kim", start=WHEN + timedelta(hours=1),
                                   database_url=sqlite_url)

    assert (view.status, view.confirmed_by, view.preferred_time) == (
        "confirmed", "nurse.kim", as_utc(WHEN) + timedelta(hours=1)
    )
    assert booking.list_requests(database_url=sqlite_url) == []
    with pytest.raises(BookingError, match="is confirmed"):
        booking.confirm_request(request_id, staff="nurse.kim", database_url=sqlite_url)
    with pytest.raises(BookingError, match="no booking request 999"):
        booking.confirm_request(999, staff="nurse.kim", database_url=sqlite_url)


def test_confirming_a_cancel_request_cancels_the_booking(booked, profile, sqlite_url: str) -> None:
    appointment, _ = booked
    booking.cancel(appointment, profile=profile, scheduler=Failing(SchedulerError("refused")), database_url=sqlite_url)
    [request] = booking.list_requests(database_url=sqlite_url)

    booking.confirm_request(request.id, staff="nurse.kim", database_url=sqlite_url)

    [view] = booking.list_bookings(status="cancelled", database_url=sqlite_url)
    assert view.cancelled_by == "nurse.kim"


def test_confirming_a_reschedule_request_moves_the_booking(booked, profile, sqlite_url: str) -> None:
    appointment, _ = booked
    booking.reschedule(appointment, slot(at(2031, 3, 5, 11)), profile=profile,
                       scheduler=Failing(SchedulerUnavailable("down")), now=NOW, database_url=sqlite_url)
    [request] = booking.list_requests(database_url=sqlite_url)

    booking.confirm_request(request.id, staff="nurse.kim", database_url=sqlite_url)

    [view] = booking.list_bookings(database_url=sqlite_url)
    assert (view.start, view.end - view.start) == (as_utc(at(2031, 3, 5, 11)), timedelta(minutes=30))


def test_staff_cancel_a_request(sqlite_url: str) -> None:
    request_id = create_request(conversation_id="conv-1", channel="twilio", full_name="Ana", phone="+13125550123",
                                preferred_time_text=None, preferred_time=None, database_url=sqlite_url)

    view = booking.cancel_request(request_id, staff="nurse.kim", database_url=sqlite_url)

    assert (view.status, view.cancelled_by) == ("cancelled", "nurse.kim")
    with pytest.raises(BookingError, match="already cancelled"):
        booking.cancel_request(request_id, staff="nurse.kim", database_url=sqlite_url)


def test_staff_cancel_a_booking_in_its_backend(booked, profile, sqlite_url: str) -> None:
    appointment, scheduler = booked

    view = booking.cancel_booking(appointment.id, staff="nurse.kim", profile=profile, scheduler=scheduler,
                                  database_url=sqlite_url)

    assert (view.status, view.cancelled_by) == ("cancelled", "nurse.kim")
    with pytest.raises(BookingError, match="already cancelled"):
        booking.cancel_booking(appointment.id, staff="nurse.kim", profile=profile, scheduler=scheduler,
                               database_url=sqlite_url)


def test_a_backend_failing_a_staff_cancel_changes_nothing(booked, profile, sqlite_url: str) -> None:
    appointment, _ = booked

    with pytest.raises(SchedulerError):
        booking.cancel_booking(appointment.id, staff="nurse.kim", profile=profile,
                               scheduler=Failing(SchedulerError("Cal.com refused the API key (HTTP 401)")),
                               database_url=sqlite_url)

    assert [v.status for v in booking.list_bookings(database_url=sqlite_url)] == ["booked"]


# ------------------------------------------------------------------ no double booking


@pytest.mark.parametrize("chairs", [1, 2])
def test_simultaneous_bookings_of_one_slot_leave_one_per_chair(database_url: str, make_profile, chairs: int) -> None:
    profile = make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings(chairs=chairs))
    scheduler = BuiltinScheduler(profile, database_url)
    start = threading.Barrier(20)

    def attempt(number: int) -> booking.Outcome:
        start.wait()
        return booking.book(draft(MONDAY_TEN, conversation_id=f"patient-{number}"), profile=profile,
                            scheduler=scheduler, now=NOW, database_url=database_url)

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))

    assert Counter(o.status for o in outcomes) == {"booked": chairs, "taken": 20 - chairs}
    for outcome in outcomes:
        if outcome.status == "taken":  # the others are offered other slots
            assert len(outcome.offers) == 3 and as_utc(MONDAY_TEN) not in [as_utc(s.start) for s in outcome.offers]
    with session_scope(database_url) as session:
        rows = session.execute(select(Booking.chair).where(Booking.status == "booked")).scalars().all()
    assert sorted(rows) == list(range(1, chairs + 1))


# ------------------------------------------------------------------ the first form's requests


def _request(url: str, **changes) -> int:
    fields = {
        "conversation_id": "conv-1",
        "channel": "twilio",
        "full_name": "Ana María López",
        "phone": "+13125550123",
        "preferred_time_text": "Tuesday, April 21 at 2 PM",
        "preferred_time": WHEN,
    }
    return create_request(**(fields | changes), database_url=url)


def test_a_request_is_stored(database_url: str) -> None:
    request_id = _request(database_url)

    with session_scope(database_url) as session:
        stored = session.get(BookingRequest, request_id)
    assert (stored.conversation_id, stored.channel, stored.full_name, stored.phone) == (
        "conv-1", "twilio", "Ana María López", "+13125550123",
    )
    assert stored.status == "requested" and stored.kind == "book" and len(stored.code) == 6
    assert stored.preferred_time_text == "Tuesday, April 21 at 2 PM"
    assert stored.preferred_time is not None and stored.created_at is not None


def test_the_preferred_time_is_stored_in_utc(database_url: str) -> None:
    request_id = _request(database_url)

    with session_scope(database_url) as session:
        stored = session.get(BookingRequest, request_id).preferred_time
    if stored.tzinfo is None:  # SQLite keeps no offset: the value must be UTC, like created_at
        stored = stored.replace(tzinfo=timezone.utc)
    assert stored == WHEN


def test_each_request_gets_its_own_number_and_code(database_url: str) -> None:
    first = _request(database_url)
    second = _request(database_url, conversation_id="conv-2", preferred_time=None, preferred_time_text=None)

    assert second != first
    with session_scope(database_url) as session:
        rows = session.execute(select(BookingRequest.id, BookingRequest.code).order_by(BookingRequest.id)).all()
    assert [r.id for r in rows] == [first, second] and rows[0].code != rows[1].code


def test_contact_details_are_not_logged(database_url: str, profile, caplog) -> None:
    caplog.set_level("DEBUG", logger="clinic")

    _request(database_url)
    booking.book(draft(MONDAY_TEN), profile=profile, scheduler=Failing(SchedulerUnavailable("down")), now=NOW,
                 database_url=database_url)

    assert "created" in caplog.text
    assert "Ana" not in caplog.text and "5550123" not in caplog.text and "example.com" not in caplog.text
    assert "depression" not in caplog.text

"""clinic.booking.scheduling.webhook: signed requests to a real local receiver that verifies them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from clinic.booking.scheduling import SchedulerError, SchedulerUnavailable, get_scheduler
from clinic.booking.scheduling.webhook import (
    EVENT_HEADER,
    WebhookScheduler,
    WebhookSender,
    deliver_pending,
    sign,
    verify_signature,
)
from clinic.clock import as_utc
from clinic.db import BookingRequest, session_scope
from tests.clinic.booking.scheduling.helpers import at, booking_settings, draft, slot
from tests.clinic.booking.scheduling.servers import WebhookReceiver, free_port
from tests.hours import WEEKDAY_HOURS

SECRET = "whsec_0123456789abcdef0123"
TEN = at(2031, 3, 3, 10)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def profile(make_profile):
    return make_profile(hours=WEEKDAY_HOURS, timezone="America/Chicago", booking=booking_settings(backend="webhook"))


@pytest.fixture
def scheduler(receiver: WebhookReceiver, profile, sqlite_url: str) -> WebhookScheduler:
    return WebhookScheduler(profile, WebhookSender(receiver.url + "/clinic/bookings", SECRET, timeout=2), sqlite_url)


def _request_row(url: str) -> BookingRequest:
    with session_scope(url) as session:
        row = session.execute(select(BookingRequest)).scalar_one()
        session.expunge(row)
        return row


# ------------------------------------------------------------------ signature


def test_the_signature_is_an_hmac_of_timestamp_and_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("body", "stamp", "signature", "ok"),
    [
        (b"{}", "1700000000", sign(SECRET, 1700000000, b"{}"), True),
        (b"{ }", "1700000000", sign(SECRET, 1700000000, b"{}"), False),  # body changed
        (b"{}", "1700000001", sign(SECRET, 1700000000, b"{}"), False),  # timestamp changed
        (b"{}", "1700000000", sign("another secret 12345", 1700000000, b"{}"), False),
        (b"{}", "1699990000", sign(SECRET, 1699990000, b"{}"), False),  # a replay, hours old
        (b"{}", None, sign(SECRET, 1700000000, b"{}"), False),
        (b"{}", "1700000000", None, False),
        (b"{}", "soon", "sha256=00", False),
    ],
)
def test_verification_rejects_changes_other_secrets_and_replays(body: bytes, stamp, signature, ok: bool) -> None:
    assert verify_signature(SECRET, body, stamp, signature, now=1700000060) is ok


# ------------------------------------------------------------------ requests


def test_a_request_is_stored_then_posted_signed(scheduler: WebhookScheduler, receiver: WebhookReceiver,
                                                 sqlite_url: str) -> None:
    placed = scheduler.book(draft(TEN, channel="twilio"))

    assert not placed.confirmed and placed.appointment.kind == "request" and len(placed.appointment.code) == 6
    [delivery] = receiver.requests
    assert receiver.verified == [True]
    assert delivery.path == "/clinic/bookings" and delivery.headers[EVENT_HEADER.lower()] == "booking_request.created"
    assert abs(int(delivery.headers["x-clinic-timestamp"]) - time.time()) < 60
    body = delivery.json()
    assert body["event"] == "booking_request.created"
    assert body["clinic"] == {"name": "Sample Ketamine Clinic", "timezone": "America/Chicago"}
    assert body["request"] | {"created_at": None} == {
        "id": placed.appointment.id, "code": placed.appointment.code, "kind": "book", "status": "requested",
        "start": "2031-03-03T10:00:00-06:00", "end": "2031-03-03T10:30:00-06:00",
        "preferred_time_text": "Monday at 10 AM", "channel": "twilio", "created_at": None,
        "patient": {"name": "Ana María López", "phone": "+13125550123", "email": "ana@example.com",
                    "visit_reason": "depression", "patient_type": "new", "sms_reminders": True},
    }
    row = _request_row(sqlite_url)
    assert (row.status, row.backend, row.webhook_status, row.webhook_attempts) == (
        "requested", "webhook", "delivered", 1
    )
    assert row.fallback_reason is None


def test_a_failed_delivery_keeps_the_request_for_staff(profile, sqlite_url: str) -> None:
    refusing = WebhookReceiver(SECRET, status=503).start()
    try:
        scheduler = WebhookScheduler(profile, WebhookSender(refusing.url, SECRET, timeout=2), sqlite_url)
        placed = scheduler.book(draft(TEN))
    finally:
        refusing.stop()

    row = _request_row(sqlite_url)
    assert placed.appointment.status == "requested"
    assert (row.status, row.webhook_status, row.webhook_error) == ("requested", "failed", "webhook answered HTTP 503")


def test_a_wrong_secret_is_refused_by_the_receiver(receiver: WebhookReceiver, profile, sqlite_url: str) -> None:
    scheduler = WebhookScheduler(profile, WebhookSender(receiver.url, "not the shared secret!"), sqlite_url)

    scheduler.book(draft(TEN))

    assert receiver.verified == [False]
    assert _request_row(sqlite_url).webhook_status == "failed"


def test_failed_deliveries_are_sent_again(profile, sqlite_url: str) -> None:
    port = free_port()
    scheduler = WebhookScheduler(profile, WebhookSender(f"http://127.0.0.1:{port}/hook", SECRET, timeout=1), sqlite_url)
    scheduler.book(draft(TEN))
    assert _request_row(sqlite_url).webhook_status == "failed"

    receiver = WebhookReceiver(SECRET)
    receiver.port = port
    receiver.start()
    try:
        assert deliver_pending(scheduler) == 1
    finally:
        receiver.stop()

    assert receiver.verified == [True]
    assert (_request_row(sqlite_url).webhook_status, _request_row(sqlite_url).webhook_attempts) == ("delivered", 2)


def test_rescheduling_and_cancelling_a_request_are_posted(scheduler: WebhookScheduler, receiver: WebhookReceiver,
                                                         sqlite_url: str) -> None:
    placed = scheduler.book(draft(TEN))

    moved = scheduler.reschedule(placed.appointment, slot(at(2031, 3, 4, 14)))
    scheduler.cancel(moved.appointment, "patient")

    events = [r.headers[EVENT_HEADER.lower()] for r in receiver.requests]
    assert events == ["booking_request.created", "booking_request.updated", "booking_request.cancelled"]
    assert receiver.requests[1].json()["request"]["start"] == "2031-03-04T14:00:00-06:00"
    assert receiver.requests[2].json()["request"]["status"] == "cancelled"
    assert all(receiver.verified) and moved.appointment.code == placed.appointment.code
    assert moved.appointment.start == as_utc(at(2031, 3, 4, 14))


def test_slots_offered_are_the_clinics_opening_slots(scheduler: WebhookScheduler) -> None:
    found = scheduler.open_slots(at(2031, 3, 3, 8), at(2031, 3, 3, 10))

    assert [s.start for s in found] == [
        at(2031, 3, 3, 8), at(2031, 3, 3, 8, 30), at(2031, 3, 3, 9), at(2031, 3, 3, 9, 30)
    ]


# ------------------------------------------------------------------ settings


def test_the_settings_come_from_the_environment(profile, receiver: WebhookReceiver) -> None:
    scheduler = get_scheduler(profile, {"BOOKING_WEBHOOK_URL": receiver.url, "BOOKING_WEBHOOK_SECRET": SECRET})

    assert isinstance(scheduler, WebhookScheduler) and scheduler.books_instantly is False


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BOOKING_WEBHOOK_SECRET": SECRET}, "needs BOOKING_WEBHOOK_URL"),
        ({"BOOKING_WEBHOOK_URL": "https://clinic.example/hook"}, "needs BOOKING_WEBHOOK_SECRET"),
        ({"BOOKING_WEBHOOK_URL": "http://clinic.example/hook", "BOOKING_WEBHOOK_SECRET": SECRET},
         "BOOKING_WEBHOOK_URL must be an https"),
        ({"BOOKING_WEBHOOK_URL": "https://clinic.example/hook", "BOOKING_WEBHOOK_SECRET": "short"},
         "at least 16 characters"),
    ],
)
def test_missing_or_unsafe_settings_are_named(profile, environ: dict[str, str], message: str) -> None:
    with pytest.raises(SchedulerError, match=message) as raised:
        get_scheduler(profile, environ)

    assert SECRET not in str(raised.value)


def test_an_unreachable_receiver_is_unavailable() -> None:
    sender = WebhookSender(f"http://127.0.0.1:{free_port()}/hook", SECRET, timeout=1)

    with pytest.raises(SchedulerUnavailable, match="unreachable"):
        sender.post("booking_request.created", {"x": 1})

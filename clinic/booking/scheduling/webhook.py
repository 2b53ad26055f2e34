"""The webhook backend: booking requests POSTed, signed, to the clinic's own system.

For clinics whose calendar the assistant cannot reach. Times offered are the clinic's opening
slots (clinic.yml); what the patient picks is a *request*: stored in the clinic database (staff
confirm it in the console) and POSTed as JSON to ``BOOKING_WEBHOOK_URL``.

Each POST carries these headers::

    X-Clinic-Event: booking_request.created | booking_request.updated | booking_request.cancelled
    X-Clinic-Delivery: <uuid of this delivery>
    X-Clinic-Timestamp: <unix seconds>
    X-Clinic-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body, key BOOKING_WEBHOOK_SECRET>

The receiver recomputes the HMAC over the timestamp and the raw body, compares it in constant
time and rejects timestamps older than a few minutes (replays): :func:`verify_signature` does
exactly that. The body always holds the request's whole current state, so receivers can upsert
by ``request.id``. A failed delivery never loses the request (it is in the database, with
``webhook_status = failed``); :func:`deliver_pending` sends it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from clinic.booking.scheduling import (
    Appointment,
    BookingDraft,
    Placed,
    SchedulerError,
    SchedulerUnavailable,
    Slot,
    secure_url,
)
from clinic.booking.scheduling.builtin import opening_slots
from clinic.booking.scheduling.records import add_request, request_appointment
from clinic.clock import as_utc, utcnow
from clinic.db import BookingRequest, session_scope
from clinic.profile import ClinicProfile

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Clinic-Signature"
TIMESTAMP_HEADER = "X-Clinic-Timestamp"
EVENT_HEADER = "X-Clinic-Event"
DELIVERY_HEADER = "X-Clinic-Delivery"
TOLERANCE_SECONDS = 300
TIMEOUT = 8.0
MIN_SECRET_LENGTH = 16


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC of ``"<timestamp>." + body``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None,
                     now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether a delivery is authentic and fresh (for the clinic's receiver, and the tests).

    Args:
        secret: the shared secret.
        body: the raw request body, exactly as received.
        timestamp: the ``X-Clinic-Timestamp`` header.
        signature: the ``X-Clinic-Signature`` header.
        now: the receiver's clock (unix seconds); default the current time.
        tolerance: how many seconds old (or early) a delivery may be.
    """
    if not timestamp or not signature or not timestamp.strip().isdigit():
        return False
    stamp = int(timestamp)
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature.strip())


class WebhookSender:
    """POSTs signed JSON events to the clinic's URL (the URL and secret are never logged)."""

    def __init__(self, url: str, secret: str, timeout: float = TIMEOUT) -> None:
        """Raises:
            SchedulerError: the URL is not https, or the secret is shorter than 16 characters.
        """
        self._url = secure_url(url, "BOOKING_WEBHOOK_URL")
        if len(secret) < MIN_SECRET_LENGTH:
            raise SchedulerError(f"BOOKING_WEBHOOK_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        self._secret = secret
        self._timeout = timeout

    def post(self, event: str, payload: Mapping[str, Any], now: float | None = None) -> None:
        """Sends one event.

        Raises:
            SchedulerUnavailable: the receiver is unreachable, timed out or answered 5xx/429.
            SchedulerError: it answered another non-2xx status.
        """
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
        stamp = int(time.time() if now is None else now)
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            DELIVERY_HEADER: str(uuid.uuid4()),
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(self._secret, stamp, body),
        }
        request = urllib.request.Request(self._url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - https only
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (408, 429) or exc.code >= 500:
                raise SchedulerUnavailable(f"webhook answered HTTP {exc.code}") from None
            raise SchedulerError(f"webhook answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise SchedulerUnavailable(f"webhook unreachable ({type(exc.reason).__name__})") from None
        except TimeoutError:
            raise SchedulerUnavailable(f"webhook timed out after {self._timeout:g} s") from None
        except OSError as exc:
            raise SchedulerUnavailable(f"webhook connection failed ({type(exc).__name__})") from None


def request_payload(row: BookingRequest, profile: ClinicProfile, event: str) -> dict[str, Any]:
    """The JSON body for one request: its whole current state."""
    tz = profile.tz
    start = as_utc(row.preferred_time).astimezone(tz) if row.preferred_time is not None else None
    end = start + timedelta(minutes=profile.booking.slot_minutes) if start is not None else None
    return {
        "event": event,
        "sent_at": utcnow().isoformat(),
        "clinic": {"name": profile.name, "timezone": profile.timezone},
        "request": {
            "id": row.id,
            "code": row.code,
            "kind": row.kind,
            "status": row.status,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "preferred_time_text": row.preferred_time_text,
            "channel": row.channel,
            "created_at": as_utc(row.created_at).isoformat() if row.created_at else None,
            "patient": {
                "name": row.full_name,
                "phone": row.phone,
                "email": row.email,
                "visit_reason": row.visit_reason,
                "patient_type": row.patient_type,
                "sms_reminders": bool(row.sms_consent),
            },
        },
    }


class WebhookScheduler:
    """Requests for staff, each also POSTed to the clinic's system (see the module docstring)."""

    name = "webhook"
    books_instantly = False

    def __init__(self, profile: ClinicProfile, sender: WebhookSender, database_url: str | None = None) -> None:
        self.profile = profile
        self.sender = sender
        self.database_url = database_url

    @classmethod
    def from_env(cls, profile: ClinicProfile, environ: Mapping[str, str]) -> WebhookScheduler:
        """Reads ``BOOKING_WEBHOOK_URL`` and ``BOOKING_WEBHOOK_SECRET``.

        Raises:
            SchedulerError: one is missing or invalid (naming the variable, never its value).
        """
        url = (environ.get("BOOKING_WEBHOOK_URL") or "").strip()
        secret = (environ.get("BOOKING_WEBHOOK_SECRET") or "").strip()
        if not url:
            raise SchedulerError("the webhook backend needs BOOKING_WEBHOOK_URL")
        if not secret:
            raise SchedulerError("the webhook backend needs BOOKING_WEBHOOK_SECRET")
        return cls(profile, WebhookSender(url, secret))

    def _url(self, database_url: str | None) -> str | None:
        return database_url or self.database_url

    def open_slots(self, start: datetime, end: datetime, database_url: str | None = None) -> list[Slot]:
        """The clinic's opening slots (the clinic's own system decides what is really free)."""
        return opening_slots(self.profile, start, end)

    def book(self, draft: BookingDraft, database_url: str | None = None) -> Placed:
        """Stores the request for staff, then POSTs it (a failed POST is recorded, not raised)."""
        appointment = add_request(draft, backend=self.name, webhook_status="pending",
                                  database_url=self._url(database_url))
        self.deliver(appointment.id, "booking_request.created", database_url)
        return Placed(appointment)

    def reschedule(self, appointment: Appointment, slot: Slot, database_url: str | None = None) -> Placed:
        """Changes the requested time and tells the clinic's system."""
        with session_scope(self._url(database_url)) as session:
            row = session.get(BookingRequest, appointment.id)
            if row is None or row.status == "cancelled":
                raise SchedulerError("no such open request")
            row.preferred_time, row.status, row.webhook_status = as_utc(slot.start), "requested", "pending"
            session.flush()
            moved = request_appointment(row)
        self.deliver(appointment.id, "booking_request.updated", database_url)
        return Placed(moved)

    def cancel(self, appointment: Appointment, by: str, database_url: str | None = None) -> None:
        """Cancels the request and tells the clinic's system."""
        with session_scope(self._url(database_url)) as session:
            row = session.get(BookingRequest, appointment.id)
            if row is None:
                raise SchedulerError("no such request")
            row.status, row.cancelled_at, row.cancelled_by, row.webhook_status = "cancelled", utcnow(), by, "pending"
        self.deliver(appointment.id, "booking_request.cancelled", database_url)

    def deliver(self, request_id: int, event: str, database_url: str | None = None) -> bool:
        """POSTs the request's current state; records the outcome. True when delivered."""
        with session_scope(self._url(database_url)) as session:
            row = session.get(BookingRequest, request_id)
            payload = request_payload(row, self.profile, event)
        error = None
        try:
            self.sender.post(event, payload)
        except SchedulerError as exc:
            error = str(exc)
            logger.warning("booking request %s: webhook delivery failed (%s); staff see it in the console",
                           request_id, error)
        with session_scope(self._url(database_url)) as session:
            row = session.get(BookingRequest, request_id)
            row.webhook_attempts = (row.webhook_attempts or 0) + 1
            row.webhook_status = "failed" if error else "delivered"
            row.webhook_error = error[:200] if error else None
        if not error:
            logger.info("booking request %s: webhook %s delivered", request_id, event)
        return error is None


def deliver_pending(scheduler: WebhookScheduler, database_url: str | None = None, max_attempts: int = 10) -> int:
    """Sends again every request whose last delivery failed; returns how many went through."""
    with session_scope(database_url or scheduler.database_url) as session:
        rows = session.execute(
            select(BookingRequest.id, BookingRequest.status).where(
                BookingRequest.backend == WebhookScheduler.name,
                BookingRequest.webhook_status.in_(("pending", "failed")),
                BookingRequest.webhook_attempts < max_attempts,
            ).order_by(BookingRequest.id)
        ).all()
    delivered = 0
    for request_id, status in rows:
        event = "booking_request.cancelled" if status == "cancelled" else "booking_request.updated"
        delivered += scheduler.deliver(request_id, event, database_url)
    return delivered

"""The clinic database's record of bookings and booking requests, shared by the backends.

Every booking and every request to book gets a booking code the patient uses to find it again
(with their phone number). Contact details are stored for staff and never logged.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from clinic.booking.scheduling import Appointment, BookingDraft, Patient, Slot, new_code
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, BookingRequest, session_scope

logger = logging.getLogger(__name__)
_CODE_TRIES = 5


def booking_appointment(row: Booking) -> Appointment:
    """A booking row as an :class:`Appointment`."""
    return Appointment(
        kind="booking", id=row.id, code=row.code, start=as_utc(row.starts_at), end=as_utc(row.ends_at),
        status=row.status, backend=row.backend, external_uid=row.external_uid, phone=row.phone,
    )


def request_appointment(row: BookingRequest) -> Appointment:
    """A booking request row as an :class:`Appointment`."""
    start = as_utc(row.preferred_time) if row.preferred_time is not None else None
    return Appointment(
        kind="request", id=row.id, code=row.code or "", start=start, end=None, status=row.status,
        backend=row.backend, phone=row.phone,
    )


def free_code(session: Session) -> str:
    """A booking code no booking or request has yet."""
    for _ in range(_CODE_TRIES):
        code = new_code()
        if not session.execute(select(exists().where(Booking.code == code))).scalar() and not session.execute(
            select(exists().where(BookingRequest.code == code))
        ).scalar():
            return code
    raise RuntimeError("could not find a free booking code")  # pragma: no cover - 10^9 codes


def new_booking_row(session: Session, draft: BookingDraft, *, backend: str, chair: int | None = None,
                    status: str = "booked", external_uid: str | None = None, slot: Slot | None = None) -> Booking:
    """Adds (and flushes) a booking row with a fresh code; the caller's transaction commits it.

    Raises:
        sqlalchemy.exc.IntegrityError: the chair is already booked at that time.
    """
    slot = slot or draft.slot
    patient = draft.patient
    row = Booking(
        code=free_code(session), conversation_id=draft.conversation_id, channel=draft.channel, backend=backend,
        external_uid=external_uid, full_name=patient.full_name, phone=patient.phone, email=patient.email,
        visit_reason=patient.visit_reason, patient_type=patient.patient_type, sms_consent=patient.sms_consent,
        starts_at=as_utc(slot.start), ends_at=as_utc(slot.end), chair=chair, status=status,
    )
    session.add(row)
    session.flush()
    return row


def add_request(draft: BookingDraft, *, backend: str | None, kind: str = "book", fallback_reason: str | None = None,
                booking_id: int | None = None, webhook_status: str | None = None, with_code: bool = True,
                database_url: str | None = None) -> Appointment:
    """Stores a request for staff (to book, or to change booking ``booking_id``) and returns it."""
    patient = draft.patient
    with session_scope(database_url) as session:
        row = BookingRequest(
            conversation_id=draft.conversation_id, channel=draft.channel, full_name=patient.full_name,
            phone=patient.phone, preferred_time_text=draft.preferred_time_text,
            preferred_time=as_utc(draft.slot.start) if draft.slot else None, status="requested",
            code=free_code(session) if with_code else None, kind=kind, booking_id=booking_id, email=patient.email,
            visit_reason=patient.visit_reason, patient_type=patient.patient_type, sms_consent=patient.sms_consent,
            backend=backend, fallback_reason=fallback_reason, webhook_status=webhook_status,
        )
        session.add(row)
        session.flush()
        logger.info("booking request %s created (kind=%s, backend=%s, fallback=%s, channel=%s)",
                    row.id, kind, backend, fallback_reason or "-", draft.channel)
        return request_appointment(row)


def find(phone: str, code: str, now: datetime | None = None, database_url: str | None = None) -> Appointment | None:
    """The patient's upcoming booking, or open request, with this phone number and code."""
    now = as_utc(now or utcnow())
    with session_scope(database_url) as session:
        booking = session.execute(
            select(Booking).where(Booking.code == code, Booking.phone == phone,
                                  Booking.status.in_(("booked", "pending")), Booking.starts_at > now)
        ).scalar_one_or_none()
        if booking is not None:
            return booking_appointment(booking)
        request = session.execute(
            select(BookingRequest).where(
                BookingRequest.code == code, BookingRequest.phone == phone, BookingRequest.kind == "book",
                BookingRequest.status.in_(("requested", "confirmed")),
                or_(BookingRequest.preferred_time.is_(None), BookingRequest.preferred_time > now),
            )
        ).scalar_one_or_none()
        return request_appointment(request) if request is not None else None


def draft_of_booking(row: Booking, slot: Slot | None = None, text: str | None = None) -> BookingDraft:
    """The draft a stored booking was made from (for a request about it)."""
    patient = Patient(row.full_name, row.phone, row.email, row.visit_reason, row.patient_type, row.sms_consent)
    return BookingDraft(patient, slot or Slot(as_utc(row.starts_at), as_utc(row.ends_at)), row.conversation_id,
                        row.channel, text)

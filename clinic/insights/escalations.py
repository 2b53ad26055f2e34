"""Metrics of escalations and bookings, read with SQL from the clinic database.

One row per escalation opened in the period comes back (its reason, urgency, when it opened,
its first delivered staff reply and when it was resolved: no text); per-day counts and the
percentiles of waiting times are worked out from those rows, since SQLite has no percentile
function. Bookings and staff replies are counted in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clinic.clock import as_utc
from clinic.db import Booking, BookingRequest, Escalation, StaffReply
from clinic.insights.period import Period

REASONS = ("medical_question", "asked_for_staff", "crisis", "emergency", "safety_checkin")
URGENCIES = ("normal", "urgent")


@dataclass(frozen=True)
class EscalationTimes:
    """An escalation opened in the period, as far as the insights need it."""

    created_at: datetime
    reason: str
    urgency: str
    first_reply_at: datetime | None
    resolved_at: datetime | None


def escalation_times(session: Session, period: Period) -> list[EscalationTimes]:
    """Escalations opened in the period, with their first delivered staff reply."""
    first_reply = (
        sa.select(sa.func.min(StaffReply.created_at))
        .where(StaffReply.escalation_id == Escalation.id, StaffReply.status == "delivered")
        .scalar_subquery()
    )
    query = (
        sa.select(Escalation.created_at, Escalation.reason, Escalation.urgency, first_reply, Escalation.resolved_at)
        .where(Escalation.created_at >= period.start, Escalation.created_at < period.end)
        .order_by(Escalation.created_at)
    )
    return [
        EscalationTimes(as_utc(created), reason, urgency, as_utc(replied), as_utc(resolved))
        for created, reason, urgency, replied, resolved in session.execute(query)
    ]


def replies_not_delivered(session: Session, period: Period) -> int:
    """Staff replies written in the period that never reached the patient."""
    return int(session.execute(
        sa.select(sa.func.count()).select_from(StaffReply)
        .where(StaffReply.status == "failed", StaffReply.created_at >= period.start, StaffReply.created_at < period.end)
    ).scalar_one())


def booking_outcomes(session: Session, period: Period) -> dict[str, int]:
    """Consultations booked in the period (bookings and requests to book), how many of those were
    cancelled since, and bookings cancelled during the period (whenever they were made)."""
    bookings = dict(session.execute(
        sa.select(Booking.status, sa.func.count())
        .where(Booking.created_at >= period.start, Booking.created_at < period.end)
        .group_by(Booking.status)
    ).all())
    requests = dict(session.execute(
        sa.select(BookingRequest.status, sa.func.count())
        .where(BookingRequest.kind == "book", BookingRequest.created_at >= period.start,
               BookingRequest.created_at < period.end)
        .group_by(BookingRequest.status)
    ).all())
    cancelled_in_period = session.execute(
        sa.select(sa.func.count()).select_from(Booking)
        .where(Booking.cancelled_at >= period.start, Booking.cancelled_at < period.end)
    ).scalar_one()
    return {
        "booked": int(sum(bookings.values()) + sum(requests.values())),
        "cancelled": int(bookings.get("cancelled", 0) + requests.get("cancelled", 0)),
        "bookings_cancelled": int(cancelled_in_period),
    }

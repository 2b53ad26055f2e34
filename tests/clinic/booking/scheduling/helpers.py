"""Drafts and profiles for the scheduling and booking tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinic.booking.scheduling import BookingDraft, Patient, Slot

CHICAGO = ZoneInfo("America/Chicago")
BOOKING = {
    "backend": "builtin",
    "slot_minutes": 30,
    "chairs": 1,
    "min_notice_hours": 2,
    "horizon_days": 60,
    "blocked_dates": ["2031-12-25"],
    "preparation": "Please have a photo ID ready.",
    "calcom_event_type_id": None,
}


def booking_settings(**changes: Any) -> dict[str, Any]:
    """clinic.yml's ``booking:`` section for the tests, with some fields replaced."""
    return {**BOOKING, **changes}


def at(year: int, month: int, day: int, hour: int, minute: int = 0, tz: ZoneInfo = CHICAGO) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def slot(start: datetime, minutes: int = 30) -> Slot:
    return Slot(start, start + timedelta(minutes=minutes))


def draft(start: datetime, *, name: str = "Ana María López", phone: str = "+13125550123",
          email: str | None = "ana@example.com", conversation_id: str = "conv-1", channel: str = "socketio",
          minutes: int = 30) -> BookingDraft:
    """A confirmed booking of the slot starting at ``start``."""
    patient = Patient(name, phone, email, "depression", "new", True)
    return BookingDraft(patient, slot(start, minutes), conversation_id, channel, "Monday at 10 AM")

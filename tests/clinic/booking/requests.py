"""Booking requests as staff find them: stored straight into the clinic database.

The booking form stores requests through the scheduling records (``add_request``); these tests
need one directly, with any of its columns set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clinic.booking.scheduling.records import free_code
from clinic.clock import as_utc
from clinic.db import BookingRequest, session_scope


def create_request(*, conversation_id: str, channel: str, full_name: str, phone: str,
                   preferred_time_text: str | None, preferred_time: datetime | None,
                   database_url: str | None = None, **details: Any) -> int:
    """Stores a plain booking request for staff and returns its number (contact details are never logged).

    ``details`` may hold the other columns of :class:`clinic.db.BookingRequest` (``email``,
    ``visit_reason``, ``patient_type``, ``sms_consent``, ``backend``, ``fallback_reason``).
    """
    with session_scope(database_url) as session:
        request = BookingRequest(
            conversation_id=conversation_id, channel=channel, full_name=full_name, phone=phone,
            preferred_time_text=preferred_time_text,
            # in UTC like every other timestamp: SQLite would otherwise keep local wall time
            preferred_time=as_utc(preferred_time) if preferred_time else None,
            status="requested", code=free_code(session), **details,
        )
        session.add(request)
        session.flush()
        return request.id

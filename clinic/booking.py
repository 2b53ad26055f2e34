"""Consultation booking requests collected by the chat, for staff to confirm."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from clinic.db import BookingRequest, session_scope

logger = logging.getLogger(__name__)


def create_request(
    *,
    conversation_id: str,
    channel: str,
    full_name: str,
    phone: str,
    preferred_time_text: str | None,
    preferred_time: datetime | None,
    database_url: str | None = None,
) -> int:
    """Stores a booking request and returns its number (contact details are never logged)."""
    with session_scope(database_url) as session:
        request = BookingRequest(
            conversation_id=conversation_id,
            channel=channel,
            full_name=full_name,
            phone=phone,
            preferred_time_text=preferred_time_text,
            # in UTC like every other timestamp: SQLite would otherwise keep local wall time
            preferred_time=preferred_time.astimezone(timezone.utc) if preferred_time else None,
            status="requested",
        )
        session.add(request)
        session.flush()
        logger.info("booking request %s created (channel=%s)", request.id, channel)
        return request.id

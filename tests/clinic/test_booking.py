"""clinic.booking: consultation requests stored for staff."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from clinic.booking import create_request
from clinic.db import BookingRequest, session_scope

WHEN = datetime(2026, 4, 21, 14, 0, tzinfo=ZoneInfo("America/Chicago"))


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
    assert stored.status == "requested"
    assert stored.preferred_time_text == "Tuesday, April 21 at 2 PM"
    assert stored.preferred_time is not None and stored.created_at is not None


def test_the_preferred_time_is_stored_in_utc(database_url: str) -> None:
    request_id = _request(database_url)

    with session_scope(database_url) as session:
        stored = session.get(BookingRequest, request_id).preferred_time
    if stored.tzinfo is None:  # SQLite keeps no offset: the value must be UTC, like created_at
        stored = stored.replace(tzinfo=timezone.utc)
    assert stored == WHEN


def test_each_request_gets_its_own_number(database_url: str) -> None:
    first = _request(database_url)
    second = _request(database_url, conversation_id="conv-2", preferred_time=None, preferred_time_text=None)

    assert second != first
    with session_scope(database_url) as session:
        ids = session.execute(select(BookingRequest.id).order_by(BookingRequest.id)).scalars().all()
    assert ids == [first, second]


def test_contact_details_are_not_logged(database_url: str, caplog) -> None:
    caplog.set_level("DEBUG", logger="clinic.booking")

    _request(database_url)

    assert "created" in caplog.text
    assert "Ana" not in caplog.text and "5550123" not in caplog.text

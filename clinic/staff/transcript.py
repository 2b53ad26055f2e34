"""Conversation transcripts for staff, read from Rasa's tracker store.

The tracker store is the record of what the patient and the clinic said (the bot's answers
and staff replies alike), so the console shows it rather than a copy. Rows are read in the
order Rasa wrote them; ``after_id`` lets a page fetch only what is new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import MetaData, Table, select
from sqlalchemy.exc import NoSuchTableError

from clinic.db import get_engine
from clinic.settings import tracker_store_url

STAFF_METADATA_KEY = "clinic_staff"  # set on ``bot`` events written by staff replies
MAX_ENTRIES = 2000


@dataclass(frozen=True)
class TranscriptEntry:
    """One line of a conversation as staff see it."""

    id: int
    at: datetime
    sender: str  # patient | bot | staff
    text: str
    staff_name: str | None = None


def read_transcript(conversation_id: str, after_id: int = 0, tracker_url: str | None = None) -> list[TranscriptEntry]:
    """What the patient and the clinic said in a conversation, oldest first.

    Args:
        conversation_id: Rasa sender id.
        after_id: only entries with a larger id (for live updates).
        tracker_url: overrides ``TRACKER_STORE_URL`` (tests).

    Returns:
        Patient messages, bot answers and staff replies; at most ``MAX_ENTRIES``.
    """
    url = tracker_url or tracker_store_url()
    events = _events_table(url)
    if events is None:
        return []
    query = (
        select(events.c.id, events.c.data)
        .where(
            events.c.sender_id == conversation_id,
            events.c.type_name.in_(("user", "bot")),
            events.c.id > after_id,
        )
        .order_by(events.c.id)
        .limit(MAX_ENTRIES)
    )
    with get_engine(url).connect() as connection:
        rows = connection.execute(query).all()
    entries = (_entry(row.id, json.loads(row.data)) for row in rows)
    return [entry for entry in entries if entry is not None]


def _entry(row_id: int, event: dict[str, Any]) -> TranscriptEntry | None:
    text = event.get("text")
    if event.get("event") == "bot":
        text = text or _describe_rich(event.get("data") or {})
    if not text:
        return None
    at = datetime.fromtimestamp(float(event.get("timestamp") or 0), tz=timezone.utc)
    if event.get("event") == "user":
        return TranscriptEntry(row_id, at, "patient", text)
    staff_name = (event.get("metadata") or {}).get(STAFF_METADATA_KEY)
    if staff_name:
        return TranscriptEntry(row_id, at, "staff", text, staff_name=str(staff_name))
    return TranscriptEntry(row_id, at, "bot", text)


def _describe_rich(data: dict[str, Any]) -> str:
    """A text-less bot message (buttons only, an image...) in a few words."""
    if data.get("buttons"):
        return "[buttons: " + ", ".join(str(b.get("title", "")) for b in data["buttons"]) + "]"
    if data.get("image"):
        return "[image]"
    return ""


@lru_cache(maxsize=8)
def _reflect(url: str) -> Table | None:
    try:
        return Table("events", MetaData(), autoload_with=get_engine(url))
    except NoSuchTableError:
        return None


def _events_table(url: str) -> Table | None:
    table = _reflect(url)
    if table is None:  # no conversation yet; look again next time
        _reflect.cache_clear()
    return table

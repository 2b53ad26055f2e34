"""Conversation transcripts for staff, read from Rasa's tracker store.

The tracker store is the record of what the patient and the clinic said (the bot's answers
and staff replies alike), so the console shows it rather than a copy. Rows are read in the
order Rasa wrote them; ``after_id`` lets a page fetch only what is new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Integer, MetaData, String, Table, and_, case, func, literal, select, union_all
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.sql.expression import ColumnElement

from clinic.channels.patient_input import EXTERNAL_INTENT_PREFIX
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


# ------------------------------------------------------------------ the inbox's previews

PREVIEW_CHARS = 100
_FAR_FUTURE = 253402300799.0  # 9999-12-31 in seconds since 1970: "no end"


@dataclass(frozen=True)
class ActivityWindow:
    """Which patient messages of a conversation an inbox row is about.

    Attributes:
        key: the caller's id for the row (the escalation's id).
        conversation_id: Rasa sender id.
        since: count the patient messages after this (the last staff reply, or when the
            escalation opened).
        until: only messages up to this (when it was resolved); None: up to now.
        count_trigger: also count the message that escalated: the latest patient message at
            or before ``since`` (when nobody has replied yet).
    """

    key: int
    conversation_id: str
    since: datetime
    until: datetime | None = None
    count_trigger: bool = False


@dataclass(frozen=True)
class PatientActivity:
    """The start of the latest patient message in a window, and how many arrived since ``since``."""

    preview: str | None
    since_count: int


def patient_activity(windows: Sequence[ActivityWindow], tracker_url: str | None = None) -> dict[int, PatientActivity]:
    """The latest patient message and the count since the last staff reply, for a page of rows.

    Two statements for the whole page, whatever its size: the first finds, per row, the id of
    the latest patient message and the counts (on the indexed ``sender_id``, without reading
    any event's JSON); the second reads only those latest events. Messages that Rasa records
    as the patient's but no patient wrote (``EXTERNAL_`` intents such as the hand-back) are left out.

    Returns:
        ``key`` -> activity, for the rows whose conversation has patient messages in its window.
    """
    if not windows:
        return {}
    url = tracker_url or tracker_store_url()
    events = _events_table(url)
    if events is None:
        return {}
    page = union_all(*(
        select(
            literal(window.key, Integer).label("key"),
            literal(window.conversation_id, String).label("sender"),
            literal(window.since.timestamp(), Float).label("since"),
            literal(window.until.timestamp() if window.until else _FAR_FUTURE, Float).label("until"),
        )
        for window in windows
    )).subquery("page")
    within = events.c.timestamp <= page.c.until
    counts = (
        select(
            page.c.key,
            func.max(case((within, events.c.id))).label("latest_id"),
            func.coalesce(func.sum(case((and_(within, events.c.timestamp > page.c.since), 1), else_=0)), 0)
            .label("after"),
            func.max(case((events.c.timestamp <= page.c.since, events.c.id))).label("before_id"),
        )
        .select_from(page.join(events, events.c.sender_id == page.c.sender))
        .where(events.c.type_name == "user", _typed_by_patient(events))
        .group_by(page.c.key)
    )
    by_key = {window.key: window for window in windows}
    with get_engine(url).connect() as connection:
        rows = connection.execute(counts).all()
        latest_ids = [row.latest_id for row in rows if row.latest_id is not None]
        texts = dict(connection.execute(select(events.c.id, events.c.data).where(events.c.id.in_(latest_ids))).all()) \
            if latest_ids else {}
    activity = {}
    for row in rows:
        trigger = 1 if by_key[row.key].count_trigger and row.before_id is not None else 0
        text = _text_of(texts.get(row.latest_id))
        activity[row.key] = PatientActivity(preview(text) if text else None, int(row.after or 0) + trigger)
    return activity


def _typed_by_patient(events: Table) -> ColumnElement[bool]:
    intent = func.coalesce(events.c.intent_name, "")
    return ~intent.startswith(EXTERNAL_INTENT_PREFIX, autoescape=True)


def _text_of(data: str | None) -> str | None:
    if not data:
        return None
    text = json.loads(data).get("text")
    return text if isinstance(text, str) else None


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The start of a message on one line: at most ``limit`` characters, cut at a word, with "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def latest_slot_value(conversation_id: str, slot: str, tracker_url: str | None = None) -> Any:
    """The value the conversation's latest event setting ``slot`` gave it (None: never set).

    Reads the conversation's slot events newest first and stops at the first one for ``slot``.
    """
    url = tracker_url or tracker_store_url()
    events = _events_table(url)
    if events is None:
        return None
    query = (
        select(events.c.data)
        .where(events.c.sender_id == conversation_id, events.c.type_name == "slot")
        .order_by(events.c.id.desc())
        .limit(MAX_ENTRIES)
    )
    with get_engine(url).connect() as connection:
        for (data,) in connection.execute(query):
            event = json.loads(data)
            if event.get("name") == slot:
                return event.get("value")
    return None

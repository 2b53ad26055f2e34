"""Rasa tracker store adapter: Rasa's SQL tracker store configured by one URL.

``TRACKER_STORE_URL`` (e.g. ``postgresql://user@host:5432/db``) picks the database;
unset, conversations are kept in SQLite under the git-ignored ``var/`` folder.

A database restart is ridden out: pooled connections are checked before use (``pool_pre_ping``),
and a read or write that loses its connection is retried for about 8 s before the error reaches
Rasa (whose fail-safe store would otherwise answer from an empty in-memory conversation and keep
the turn only in memory: a patient answered, the message lost). Errors never carry the bound
values (``hide_parameters``): sender ids (phone numbers on SMS) and message text.

Speed (README "Performance"; same rows, same order, same trackers as Rasa's store):

- Reads and writes use two plain SQL statements each instead of Rasa's ORM queries, and a save
  inserts only the events this tracker object added since it was read or last saved (counted
  on the object) instead of counting the conversation's stored events first. The count is exact
  because a conversation's turn holds its lock (lock store) from read to save; a tracker that
  was not read here (a new conversation, or one built by an API call) is counted as Rasa counts.
- SQLite (the embedded default) keeps its connections (Rasa opens one per query) in
  write-ahead-log mode with ``synchronous=NORMAL``: a commit no longer waits for the disk. The
  database stays consistent; a power cut or OS crash (not a process crash) can lose the last
  moments of conversation. ``TRACKER_STORE_SYNC=FULL`` makes every commit durable again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from clinic.settings import VAR_DIR, tracker_store_sync, tracker_store_url

logger = logging.getLogger(__name__)
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)  # seconds between attempts: ~8 s in all
T = TypeVar("T")

# On a tracker object: how many of its events (from the first) are in the database.
STORED = "_clinic_stored_events"

_TABLE = SQLTrackerStore.SQLEvent.__table__
_SESSION_START = sa.text(
    f"SELECT max(timestamp) FROM {_TABLE.name} WHERE sender_id = :sender AND type_name = :session_started"
)
_ALL_EVENTS = sa.text(f"SELECT data FROM {_TABLE.name} WHERE sender_id = :sender ORDER BY id")
# Rasa's query in one statement: the events from the latest session start (or all of them)
_LATEST_SESSION_EVENTS = sa.text(
    f"SELECT data FROM {_TABLE.name} WHERE sender_id = :sender AND (timestamp >= ("
    f"SELECT max(timestamp) FROM {_TABLE.name} WHERE sender_id = :sender AND type_name = :session_started) "
    f"OR NOT EXISTS (SELECT 1 FROM {_TABLE.name} WHERE sender_id = :sender AND type_name = :session_started)) "
    f"ORDER BY id"
)
_INSERT = sa.text(
    f"INSERT INTO {_TABLE.name} (sender_id, type_name, timestamp, intent_name, action_name, data) "
    f"VALUES (:sender_id, :type_name, :timestamp, :intent_name, :action_name, :data)"
)
_COUNT_ALL = sa.text(f"SELECT count(*) FROM {_TABLE.name} WHERE sender_id = :sender")
_COUNT_SINCE = sa.text(f"SELECT count(*) FROM {_TABLE.name} WHERE sender_id = :sender AND timestamp >= :start")


def _sqlite_engine(url: sa.engine.URL) -> sa.engine.Engine:
    """One long-lived connection per thread, in WAL mode (readers never wait for the writer)."""
    sync = tracker_store_sync()
    engine = sa.create_engine(url, hide_parameters=True, poolclass=sa.pool.QueuePool, pool_size=2,
                              max_overflow=8, connect_args={"check_same_thread": False, "timeout": 10})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:  # pragma: no cover - driver hook
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sync}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine


def _row(sender_id: str, event: Any) -> dict[str, Any]:
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": (data.get("parse_data") or {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def _connection_lost(error: DBAPIError) -> bool:
    return bool(error.connection_invalidated) or isinstance(error, (OperationalError, InterfaceError))


class ClinicTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` whose connection comes from ``TRACKER_STORE_URL``."""

    def __init__(self, domain: Any = None, event_broker: Any = None, **kwargs: Any) -> None:
        url = make_url(tracker_store_url())
        if url.drivername.startswith("sqlite"):
            VAR_DIR.mkdir(parents=True, exist_ok=True)
        kwargs.pop("host", None)
        super().__init__(
            domain=domain,
            dialect=url.drivername,
            host=url.host,
            port=url.port,
            db=url.database,
            username=url.username,
            password=url.password,
            event_broker=event_broker,
            query=dict(url.query) or None,
        )
        # Rasa's engine has neither: replace it (same URL and pool settings)
        engine_url = self.engine.url
        self.engine.dispose()
        if engine_url.drivername.startswith("sqlite"):
            self.engine = _sqlite_engine(engine_url)
        else:
            self.engine = sa.create_engine(engine_url, pool_pre_ping=True, hide_parameters=True,
                                           **create_engine_kwargs(engine_url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
            try:
                return await call()
            except DBAPIError as error:
                if delay is None or not _connection_lost(error):
                    raise
                logger.warning("tracker store %s lost its database connection (%s); retry %d in %.2f s",
                               what, type(error.orig or error).__name__, attempt, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def retrieve(self, sender_id: str) -> Any:
        return await self._retrying("read", lambda: super(ClinicTrackerStore, self).retrieve(sender_id))

    async def retrieve_full_tracker(self, conversation_id: str) -> Any:
        return await self._retrying(
            "read", lambda: super(ClinicTrackerStore, self).retrieve_full_tracker(conversation_id))

    async def save(self, tracker: Any) -> None:
        await self._retrying("write", lambda: self._save(tracker))

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> Any:
        """Rasa's ``_retrieve`` (the same events: from the latest session start by timestamp, or
        all of them, in insertion order) in plain SQL; the tracker remembers how many it holds."""
        with self.session_scope() as session:
            if fetch_events_from_all_sessions:
                rows = session.execute(_ALL_EVENTS, {"sender": sender_id}).all()
            else:
                rows = session.execute(_LATEST_SESSION_EVENTS, {
                    "sender": sender_id, "session_started": SessionStarted.type_name}).all()
        if not self.domain or not rows:
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, [json.loads(data) for (data,) in rows],
                                                 self.domain.slots)
        setattr(tracker, STORED, len(rows))
        return tracker

    @staticmethod
    def _session_start(session: Any, sender_id: str) -> float | None:
        """The timestamp of the conversation's latest ``session_started`` event, if any."""
        return session.execute(
            _SESSION_START, {"sender": sender_id, "session_started": SessionStarted.type_name}).scalar()

    async def _save(self, tracker: Any) -> None:
        await self.stream_events(tracker)
        stored = getattr(tracker, STORED, None)
        events = list(tracker.events)
        with self.session_scope() as session:
            if stored is None or stored > len(events):  # not read here: count as Rasa does
                start = self._session_start(session, tracker.sender_id)
                stored = session.execute(_COUNT_ALL if start is None else _COUNT_SINCE,
                                         {"sender": tracker.sender_id, "start": start}).scalar()
            new = [_row(tracker.sender_id, event) for event in events[stored:]]
            if new:
                session.execute(_INSERT, new)
                session.commit()
        setattr(tracker, STORED, len(events))

    async def keys(self) -> Any:
        return await self._retrying("read", lambda: super(ClinicTrackerStore, self).keys())

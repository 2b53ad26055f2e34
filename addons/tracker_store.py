"""Rasa tracker store adapter: Rasa's SQL tracker store configured by one URL.

``TRACKER_STORE_URL`` (e.g. ``postgresql://user@host:5432/db``) picks the database;
unset, conversations are kept in SQLite under the git-ignored ``var/`` folder.

A database restart is ridden out: pooled connections are checked before use (``pool_pre_ping``),
and a read or write that loses its connection is retried for about 8 s before the error reaches
Rasa (whose fail-safe store would otherwise answer from an empty in-memory conversation and keep
the turn only in memory: a patient answered, the message lost). Errors never carry the bound
values (``hide_parameters``): sender ids (phone numbers on SMS) and message text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from clinic.settings import VAR_DIR, tracker_store_url

logger = logging.getLogger(__name__)
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)  # seconds between attempts: ~8 s in all
T = TypeVar("T")


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
        await self._retrying("write", lambda: super(ClinicTrackerStore, self).save(tracker))

    async def keys(self) -> Any:
        return await self._retrying("read", lambda: super(ClinicTrackerStore, self).keys())

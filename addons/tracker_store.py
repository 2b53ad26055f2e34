"""Rasa tracker store adapter: Rasa's SQL tracker store configured by one URL.

``TRACKER_STORE_URL`` (e.g. ``postgresql://user@host:5432/db``) picks the database;
unset, conversations are kept in SQLite under the git-ignored ``var/`` folder.
"""

from __future__ import annotations

from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy.engine import make_url

from clinic.settings import VAR_DIR, tracker_store_url


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

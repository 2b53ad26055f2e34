"""Indexes the insights queries need on Rasa's tracker store (the ``events`` table).

Rasa indexes ``events`` by sender only; the insights read it by event type, action or intent
and time. Migration 0009 creates these indexes when the tracker store shares the clinic
database (as in production); a tracker store of its own gets them here, from ``python -m
clinic.cli migrate``. ``CREATE INDEX IF NOT EXISTS`` (SQLite and PostgreSQL): running it again
does nothing. Until Rasa has created the table there is nothing to index.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from clinic.db import get_engine
from clinic.insights._sql import has_events_table
from clinic.settings import tracker_store_url

logger = logging.getLogger(__name__)

# The same names and columns as migrations/versions/0009_insights.py.
TRACKER_INDEXES = (
    ("ix_events_insights_type_time", ("type_name", "timestamp", "sender_id", "intent_name")),
    ("ix_events_insights_action_time", ("action_name", "timestamp", "sender_id")),
    ("ix_events_insights_intent_time", ("intent_name", "timestamp")),
)


def ensure_tracker_indexes(url: str | None = None) -> int:
    """Creates the missing indexes on the tracker store; returns how many it created."""
    engine = get_engine(url or tracker_store_url())
    with engine.begin() as connection:
        if not has_events_table(connection):
            return 0
        existing = {index["name"] for index in sa.inspect(connection).get_indexes("events")}
        created = 0
        for name, columns in TRACKER_INDEXES:
            if name not in existing:
                connection.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON events ({', '.join(columns)})"))
                created += 1
    if created:
        logger.info("tracker store: %d insights index(es) created", created)
    return created

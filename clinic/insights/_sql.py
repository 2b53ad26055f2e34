"""SQL pieces shared by the insights queries: the tracker store's table and the report's days.

Everything here renders the same on SQLite and PostgreSQL; the one difference, reading a field of
an event's JSON, is :func:`json_text`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clinic.insights.period import Period

# Rasa's SQLTrackerStore table (rasa.core.tracker_store.SQLTrackerStore.SQLEvent), as far as read here.
EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("intent_name", sa.String),
    sa.column("action_name", sa.String),
    sa.column("data", sa.Text),
)


def days_table(period: Period) -> Any:
    """The report's days as a subquery ``days(day, lo, hi, open_lo, open_hi)`` of epoch seconds.

    A day the clinic is closed has ``open_lo = open_hi``: no moment falls inside its hours. Built
    as ``SELECT ... UNION ALL SELECT ...``, which both databases read (SQLite has no column list
    after ``VALUES ... AS name``).
    """
    rows = []
    for day in period.days:
        lo, hi = day.start.timestamp(), day.end.timestamp()
        opens = day.opens.timestamp() if day.opens is not None else lo
        closes = day.closes.timestamp() if day.closes is not None else lo
        rows.append(sa.select(
            sa.literal(day.day.isoformat(), sa.String).label("day"),
            sa.literal(lo, sa.Float).label("lo"),
            sa.literal(hi, sa.Float).label("hi"),
            sa.literal(opens, sa.Float).label("open_lo"),
            sa.literal(closes, sa.Float).label("open_hi"),
        ))
    return sa.union_all(*rows).subquery("days") if len(rows) > 1 else rows[0].subquery("days")


def json_text(connection: Connection, column: Any, *path: str) -> Any:
    """The text at ``path`` of a JSON column stored as text (``data`` of an event)."""
    if connection.dialect.name == "postgresql":
        return sa.cast(column, sa.JSON)[path].as_string()  # (data::json #>> '{a,b}')
    return sa.func.json_extract(column, "$." + ".".join(path))


def has_events_table(connection: Connection) -> bool:
    """Whether Rasa has created its table yet (it does on the first conversation)."""
    return sa.inspect(connection).has_table("events")

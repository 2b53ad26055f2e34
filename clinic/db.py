"""The clinic database: tables, engine and sessions.

One database layer for the clinic's own records (escalations, booking requests). The URL
comes from ``CLINIC_DATABASE_URL`` (SQLite under ``var/`` by default, PostgreSQL in
production); the schema is managed by Alembic (``migrations/``, applied by ``make db``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, declarative_base, relationship, sessionmaker

from clinic.settings import clinic_database_url

Base = declarative_base()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Escalation(Base):
    """A conversation handed to clinic staff (at most one open per conversation)."""

    __tablename__ = "escalations"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    reason = Column(String(32), nullable=False)  # crisis | emergency | medical_question | asked_for_staff
    urgency = Column(String(16), nullable=False, default="normal")  # normal | urgent
    status = Column(String(16), nullable=False, default="open")  # open | resolved
    trigger_message_id = Column(String(64))
    trigger_text = Column(Text)
    guard_reason = Column(JSON)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)
    resolved_at = Column(DateTime(timezone=True))

    messages = relationship(
        "EscalationMessage", back_populates="escalation", order_by="EscalationMessage.id"
    )

    __table_args__ = (
        Index(
            "uq_escalations_one_open",
            "conversation_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )


class EscalationMessage(Base):
    """A patient message that escalated (the first one and every later one attached)."""

    __tablename__ = "escalation_messages"

    id = Column(Integer, primary_key=True)
    escalation_id = Column(ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False)
    message_id = Column(String(64), nullable=False)
    reason = Column(String(32), nullable=False)
    text = Column(Text)
    guard_reason = Column(JSON)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    escalation = relationship("Escalation", back_populates="messages")

    __table_args__ = (UniqueConstraint("escalation_id", "message_id", name="uq_escalation_message"),)


class BookingRequest(Base):
    """A consultation request collected by the booking form, for staff to confirm."""

    __tablename__ = "booking_requests"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    full_name = Column(String(200), nullable=False)
    phone = Column(String(32), nullable=False)
    preferred_time_text = Column(String(200))
    preferred_time = Column(DateTime(timezone=True))
    status = Column(String(16), nullable=False, default="requested")  # requested | confirmed | cancelled
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def get_engine(url: str | None = None) -> Engine:
    """One engine per database URL (created on first use, never at import time).

    ``hide_parameters``: a database error's text never carries the bound values (patient
    messages, names, phone numbers), so logging the error cannot leak them.
    """
    # Resolve the default first: caching it under ``None`` would ignore a changed environment.
    return _engine(url or clinic_database_url())


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, hide_parameters=True, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, future=True, hide_parameters=True, pool_pre_ping=True)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on error, always closes."""
    session = sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(url: str | None = None) -> None:
    """Brings the schema up to date with Alembic (idempotent)."""
    from alembic import command
    from alembic.config import Config

    from clinic.settings import PROJECT_DIR

    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.attributes["database_url"] = url or clinic_database_url()
    command.upgrade(config, "head")

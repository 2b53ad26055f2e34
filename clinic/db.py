"""The clinic database: tables, engine and sessions.

One database layer for the clinic's own records (escalations, staff accounts and their work,
notifications, bookings and booking requests). The URL
comes from ``CLINIC_DATABASE_URL`` (SQLite under ``var/`` by default, PostgreSQL in
production); the schema is managed by Alembic (``migrations/``, applied by ``make db``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
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

from clinic.clock import utcnow
from clinic.settings import clinic_database_url

# Any: SQLAlchemy 1.4 declares no type for the declarative base (its mypy plugin is not used here).
Base: Any = declarative_base()


class Escalation(Base):
    """A conversation handed to clinic staff (at most one open per conversation)."""

    __tablename__ = "escalations"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    reason = Column(String(32), nullable=False)  # crisis | emergency | medical_question | asked_for_staff
    language = Column(String(8))  # the conversation's language (en | es); null on rows from before it was kept
    urgency = Column(String(16), nullable=False, default="normal")  # normal | urgent
    status = Column(String(16), nullable=False, default="open")  # open | resolved
    trigger_message_id = Column(String(64))
    trigger_text = Column(Text)
    guard_reason = Column(JSON)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)
    resolved_at = Column(DateTime(timezone=True))
    assigned_to_id = Column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    resolved_by_id = Column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    last_patient_message_at = Column(DateTime(timezone=True))

    messages = relationship(
        "EscalationMessage", back_populates="escalation", order_by="EscalationMessage.id"
    )
    assigned_to = relationship("StaffUser", foreign_keys=[assigned_to_id])
    resolved_by = relationship("StaffUser", foreign_keys=[resolved_by_id])

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
    """A patient message of an escalation: the one that escalated, later escalating ones, and
    every message sent while the conversation is with staff (``reason="handoff"``)."""

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


class StaffUser(Base):
    """A clinic staff member who works the inbox (created with ``python -m clinic.cli staff``)."""

    __tablename__ = "staff_users"

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(120), nullable=False)
    password_hash = Column(String(255), nullable=False)  # argon2id
    is_admin = Column(Boolean, nullable=False, default=False)  # kept equal to role == "admin"
    role = Column(String(16), nullable=False, default="staff", server_default="staff")  # staff | admin | manager
    is_active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_login_at = Column(DateTime(timezone=True))


class StaffSession(Base):
    """A signed-in browser: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "staff_sessions"

    id = Column(Integer, primary_key=True)
    token_hash = Column(String(64), nullable=False, unique=True)
    user_id = Column(ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_seen_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    expires_at = Column(DateTime(timezone=True), nullable=False)

    user = relationship("StaffUser")


class ApiToken(Base):
    """A bearer token for the console's JSON API, stored as its SHA-256 (shown once)."""

    __tablename__ = "api_tokens"

    id = Column(Integer, primary_key=True)
    user_id = Column(ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True)
    name = Column(String(64), nullable=False)
    token_hash = Column(String(64), nullable=False, unique=True)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_used_at = Column(DateTime(timezone=True))
    revoked_at = Column(DateTime(timezone=True))

    user = relationship("StaffUser")


class PatientNote(Base):
    """A staff note about a patient, kept across their escalations (staff only, never sent to them).

    ``patient_key`` names the patient: ``phone:+1...`` on SMS, ``conversation:<id>`` elsewhere
    (:mod:`clinic.staff.patient_notes`); ``escalation_id`` is where it was written, if anywhere.
    """

    __tablename__ = "patient_notes"

    id = Column(Integer, primary_key=True)
    patient_key = Column(String(255), nullable=False, index=True)
    author_id = Column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    escalation_id = Column(ForeignKey("escalations.id", ondelete="SET NULL"))
    text = Column(Text, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    author = relationship("StaffUser")


class EscalationNote(Base):
    """An internal note on an escalation (staff only, never sent to the patient)."""

    __tablename__ = "escalation_notes"

    id = Column(Integer, primary_key=True)
    escalation_id = Column(ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    author_id = Column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    text = Column(Text, nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    author = relationship("StaffUser")


class StaffReply(Base):
    """A reply written by staff and its delivery to the patient's channel."""

    __tablename__ = "staff_replies"

    id = Column(Integer, primary_key=True)
    escalation_id = Column(ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    author_id = Column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    text = Column(Text, nullable=False)
    status = Column(String(16), nullable=False, default="sending")  # sending | delivered | failed
    error = Column(String(500))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    delivered_at = Column(DateTime(timezone=True))

    author = relationship("StaffUser")

    __table_args__ = (Index("ix_staff_replies_escalation_created", "escalation_id", "created_at"),)


class AuditEvent(Base):
    """Who did what to which conversation (views, claims, replies, notes, resolves, sign-ins).

    No foreign keys: the trail outlives the rows it mentions. ``detail`` never holds patient text.
    """

    __tablename__ = "audit_events"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    user_id = Column(Integer)
    username = Column(String(64))
    action = Column(String(32), nullable=False)
    escalation_id = Column(Integer, index=True)
    conversation_id = Column(String(255))
    detail = Column(String(255))


class Notification(Base):
    """Outbox: one staff notification per escalation event and notifier, retried until sent."""

    __tablename__ = "notifications"

    id = Column(Integer, primary_key=True)
    escalation_id = Column(ForeignKey("escalations.id", ondelete="CASCADE"), nullable=False, index=True)
    notifier = Column(String(16), nullable=False)  # slack | email | sms
    event = Column(String(16), nullable=False)  # opened | urgent
    urgent = Column(Boolean, nullable=False, default=False)
    status = Column(String(16), nullable=False, default="pending")  # pending | sent | failed
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    last_error = Column(String(500))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    sent_at = Column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("escalation_id", "notifier", "event", name="uq_notification_once"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )


class SmsContact(Base):
    """A phone number that texts the clinic: SMS opt-out state and the first-contact notice."""

    __tablename__ = "sms_contacts"

    id = Column(Integer, primary_key=True)
    phone = Column(String(32), nullable=False, unique=True)  # E.164
    opted_out = Column(Boolean, nullable=False, default=False)
    opted_out_at = Column(DateTime(timezone=True))
    opted_in_at = Column(DateTime(timezone=True))
    privacy_notice_sent_at = Column(DateTime(timezone=True))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)


class ReceivedSms(Base):
    """An incoming text's Twilio ``MessageSid``, taken once: Twilio's re-deliveries of it are ignored.

    Shared by every Rasa instance and kept across restarts; purged after a few days
    (:mod:`clinic.retention`). No number and no text: the id alone.
    """

    __tablename__ = "received_sms"

    message_sid = Column(String(64), primary_key=True)
    received_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)


class SavedReply(Base):
    """A reply template staff insert into the reply box (:mod:`clinic.staff.saved_replies`).

    ``body`` keeps its ``{placeholders}``; they are filled in for each conversation. Retired
    templates are kept (the audit trail names them) but no longer offered.
    """

    __tablename__ = "saved_replies"

    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False)
    body = Column(Text, nullable=False)
    channel = Column(String(8))  # web | sms; None: every channel
    retired = Column(Boolean, nullable=False, default=False)
    created_by = Column(String(64))
    updated_by = Column(String(64))
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)


class BookingRequest(Base):
    """A request for staff: a consultation to book, or a change to a booking, to confirm.

    Requests come from the webhook backend (the clinic's own system books), or from any backend
    that was down or failed (``fallback_reason``), so nothing the patient entered is lost.
    ``kind`` is ``book``, ``reschedule`` (of ``booking_id`` to ``preferred_time``) or ``cancel``.
    """

    __tablename__ = "booking_requests"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    full_name = Column(String(200), nullable=False)
    phone = Column(String(32), nullable=False)
    preferred_time_text = Column(String(200))
    preferred_time = Column(DateTime(timezone=True))
    status = Column(String(16), nullable=False, default="requested")  # requested | confirmed | cancelled
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    # schema 0004: booking and scheduling hand-off
    code = Column(String(12))  # the patient's booking code (reschedule / cancel)
    kind = Column(String(16), nullable=False, default="book", server_default="book")
    booking_id = Column(ForeignKey("bookings.id", ondelete="SET NULL", name="fk_booking_requests_booking_id"))
    email = Column(String(254))
    visit_reason = Column(String(40))
    patient_type = Column(String(16))  # new | returning
    sms_consent = Column(Boolean)
    backend = Column(String(16))  # the scheduling backend in use: builtin | calcom | webhook
    fallback_reason = Column(String(64))  # why the backend could not book it (None: by design)
    webhook_status = Column(String(16))  # pending | delivered | failed (webhook backend)
    webhook_attempts = Column(Integer, nullable=False, default=0, server_default="0")
    webhook_error = Column(String(200))
    updated_at = Column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    confirmed_at = Column(DateTime(timezone=True))
    confirmed_by = Column(String(64))
    cancelled_at = Column(DateTime(timezone=True))
    cancelled_by = Column(String(64))

    booking = relationship("Booking")

    __table_args__ = (UniqueConstraint("code", name="uq_booking_requests_code"),)


class Booking(Base):
    """A booked consultation (built-in calendar or Cal.com), found again by phone and code.

    Built-in bookings hold a ``chair``: at most one booked consultation per start time and chair
    (a partial unique index), so concurrent requests for the last free chair cannot both win.
    Cal.com bookings have no chair (Cal.com decides availability) and its ``external_uid``.
    """

    __tablename__ = "bookings"

    id = Column(Integer, primary_key=True)
    code = Column(String(12), nullable=False, unique=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    channel = Column(String(32), nullable=False)
    backend = Column(String(16), nullable=False)  # builtin | calcom
    external_uid = Column(String(128), index=True)
    full_name = Column(String(200), nullable=False)
    phone = Column(String(32), nullable=False, index=True)  # E.164
    email = Column(String(254))
    visit_reason = Column(String(40))
    patient_type = Column(String(16))
    sms_consent = Column(Boolean, nullable=False, default=False)
    starts_at = Column(DateTime(timezone=True), nullable=False, index=True)  # UTC
    ends_at = Column(DateTime(timezone=True), nullable=False)
    chair = Column(Integer)
    status = Column(String(16), nullable=False, default="booked")  # booked | pending | cancelled
    created_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, index=True)
    updated_at = Column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)
    cancelled_at = Column(DateTime(timezone=True))
    cancelled_by = Column(String(64))  # "patient" or a staff username

    __table_args__ = (
        Index(
            "uq_bookings_slot_chair",
            "starts_at",
            "chair",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )


class InsightLabel(Base):
    """The intent an admin says an unanswered patient message should have had (clinic insights).

    It points at the message in the tracker store (``event_id``) and holds no text: the NLU export
    reads the text from there. Purged with the conversations (``message_at``, :mod:`clinic.retention`).
    """

    __tablename__ = "insight_labels"

    id = Column(Integer, primary_key=True)
    event_id = Column(Integer, nullable=False)
    conversation_id = Column(String(255), nullable=False)
    intent = Column(String(64), nullable=False)
    message_at = Column(DateTime(timezone=True), nullable=False, index=True)
    labelled_by = Column(String(64))
    labelled_at = Column(DateTime(timezone=True), nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("event_id", name="uq_insight_labels_event"),)


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

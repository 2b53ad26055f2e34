"""Retention: deletes patient data older than the clinic's retention setting (``make purge``).

What is deleted (``retention_days`` in clinic.yml, default 365; ``--days`` overrides it):

- **Conversations** in Rasa's tracker store (the ``events`` table at ``TRACKER_STORE_URL``): all
  events of every conversation whose *last* event is older than the cutoff. A conversation that
  is still active keeps its whole history; one with an open escalation is kept too (staff read it).
- **Escalations** that are resolved, resolved before the cutoff, with their patient messages,
  internal notes, staff replies and staff notifications (deleted explicitly, children first; the
  foreign keys also cascade). Open escalations are never deleted, however old: a patient is
  waiting for a person.
- **Bookings** whose appointment started before the cutoff, and **booking requests** whose
  requested time (or, without one, creation) and creation are both before it, whatever their
  status: the appointment is long past.
- **SMS contacts** that are not opted out, untouched since the cutoff and whose number has no
  active conversation. Opt-outs (STOP) are kept for as long as the clinic texts: carriers require
  honouring them.
- **Received SMS ids** (Twilio ``MessageSid``s kept to ignore re-deliveries) after
  :data:`RECEIVED_SMS_DAYS` days, or the retention period if shorter: Twilio re-delivers within
  minutes, not days.
- **Intents marked on unanswered messages** (clinic insights) whose message is older than the
  cutoff: they name the conversation, and the message they point at is purged with it.
- **Notes on a patient** (kept across their escalations) written before the cutoff, each on its own.
- **Staff sessions** that have expired (whatever the setting).
- **Audit events** (who viewed, claimed, replied; never patient text) older than
  ``audit_retention_days`` (default max(6 years, retention_days)).

Staff accounts and API tokens are not patient data and are kept. A dry run counts the same rows
without deleting anything. Deletions in the clinic database are one transaction; the tracker
store is purged in batches of conversations, each re-checked at delete time so a conversation
that receives a message meanwhile is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, and_, delete, exists, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.orm import Session

from clinic.clock import as_utc, utcnow
from clinic.db import (
    AuditEvent,
    Booking,
    BookingRequest,
    Escalation,
    EscalationMessage,
    EscalationNote,
    InsightLabel,
    Notification,
    PatientNote,
    ReceivedSms,
    SmsContact,
    StaffReply,
    StaffSession,
    get_engine,
    session_scope,
)
from clinic.settings import tracker_store_url

logger = logging.getLogger(__name__)
BATCH = 500  # ids per IN (...) list: well under SQLite's limit on bound parameters
RECEIVED_SMS_DAYS = 7
TRACKER_EVENTS = "events (tracker store)"
TRACKER_CONVERSATIONS = "conversations (tracker store)"
# Report order: the tracker store, then the clinic database's tables (children before parents).
TABLES = (
    TRACKER_CONVERSATIONS, TRACKER_EVENTS, "escalations", "escalation_messages", "escalation_notes",
    "staff_replies", "notifications", "bookings", "booking_requests", "sms_contacts", "received_sms",
    "staff_sessions", "audit_events", "insight_labels", "patient_notes",
)


@dataclass
class PurgeReport:
    """What a purge deleted (or, for a dry run, would delete), per table, and what it kept."""

    cutoff: datetime
    audit_cutoff: datetime
    days: int
    audit_days: int
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    kept: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(n for table, n in self.deleted.items() if table != TRACKER_CONVERSATIONS)


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _periods(days: int | None, audit_days: int | None) -> tuple[int, int]:
    """The retention periods: those given, else clinic.yml's (audit events kept at least ``days``)."""
    if days is not None and audit_days is not None:
        return days, audit_days
    from clinic.profile import load_profile

    profile = load_profile()
    days = profile.retention_days if days is None else days
    return days, max(profile.audit_retention_days, days) if audit_days is None else audit_days


def purge(
    days: int | None = None,
    *,
    audit_days: int | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    database_url: str | None = None,
    tracker_url: str | None = None,
) -> PurgeReport:
    """Deletes (or with ``dry_run`` only counts) the patient data older than the retention period.

    Args:
        days: keep this many days; default ``retention_days`` of clinic.yml.
        audit_days: keep audit events this many days; default ``audit_retention_days``.
        dry_run: count what would be deleted; delete nothing.
        now: the current time (tests).
        database_url: the clinic database (default ``CLINIC_DATABASE_URL``).
        tracker_url: Rasa's tracker store (default ``TRACKER_STORE_URL``).

    Returns:
        Rows deleted (or that would be) per table, and what was kept on purpose.

    Raises:
        ValueError: ``days`` or ``audit_days`` below 1.
        clinic.profile.ProfileError: clinic.yml is invalid (only read when a period is not given).
    """
    days, audit_days = _periods(days, audit_days)
    if days < 1 or audit_days < 1:
        raise ValueError("retention periods are whole days, at least 1")
    now = as_utc(now or utcnow())
    report = PurgeReport(cutoff=now - timedelta(days=days), audit_cutoff=now - timedelta(days=audit_days),
                         days=days, audit_days=audit_days, dry_run=dry_run)

    with session_scope(database_url) as session:
        open_conversations = set(session.execute(
            select(Escalation.conversation_id).where(Escalation.status == "open")).scalars())
    active_senders = _purge_tracker(tracker_url or tracker_store_url(), report, open_conversations)
    with session_scope(database_url) as session:
        _purge_escalations(session, report)
        _purge_bookings(session, report)
        _purge_sms_contacts(session, report, active_senders)
        _count_or_delete(session, report, "received_sms", ReceivedSms,
                         ReceivedSms.received_at < max(report.cutoff, now - timedelta(days=RECEIVED_SMS_DAYS)))
        _count_or_delete(session, report, "staff_sessions", StaffSession, StaffSession.expires_at < now)
        _count_or_delete(session, report, "audit_events", AuditEvent, AuditEvent.at < report.audit_cutoff)
        _count_or_delete(session, report, "insight_labels", InsightLabel, InsightLabel.message_at < report.cutoff)
        _count_or_delete(session, report, "patient_notes", PatientNote, PatientNote.created_at < report.cutoff)
        if dry_run:
            session.rollback()
    logger.info(
        "retention purge%s: %d row(s) older than %d days (audit: %d days)%s",
        " (dry run)" if dry_run else "", report.total, days, audit_days,
        "".join(f", {table} {n}" for table, n in report.deleted.items() if n),
    )
    return report


# ------------------------------------------------------------------ tracker store


def _events_table(connection: Connection) -> Table | None:
    try:
        return Table("events", MetaData(), autoload_with=connection)
    except NoSuchTableError:  # no conversation yet: Rasa creates the table on first use
        return None


def _purge_tracker(url: str, report: PurgeReport, open_conversations: set[str]) -> set[str]:
    """Purges idle conversations; returns the senders that are still active (kept)."""
    cutoff = report.cutoff.timestamp()
    engine = get_engine(url)
    with engine.connect() as connection:
        events = _events_table(connection)
        if events is None:
            return set()
        last_event = (
            select(events.c.sender_id, func.max(events.c.timestamp).label("last"))
            .group_by(events.c.sender_id)
        )
        idle, active = [], set()
        for sender, last in connection.execute(last_event):
            if last is not None and last < cutoff:
                idle.append(sender)
            else:
                active.add(sender)
    kept = [s for s in idle if s in open_conversations]
    idle = [s for s in idle if s not in open_conversations]
    if kept:
        report.kept["conversations with an open escalation"] = len(kept)
    newer = events.alias("newer")
    for batch in _chunks(idle):
        # re-checked in the statement: a conversation that got a message since the scan is kept
        still_idle = and_(
            events.c.sender_id.in_(batch),
            ~exists().where(newer.c.sender_id == events.c.sender_id, newer.c.timestamp >= cutoff),
        )
        with engine.begin() as connection:
            senders = connection.execute(
                select(func.count(events.c.sender_id.distinct())).where(still_idle)).scalar_one()
            if report.dry_run:
                rows = connection.execute(select(func.count()).select_from(events).where(still_idle)).scalar_one()
            else:
                rows = connection.execute(delete(events).where(still_idle)).rowcount
        report.deleted[TRACKER_EVENTS] += rows
        report.deleted[TRACKER_CONVERSATIONS] += senders
    return active | set(kept)


# ------------------------------------------------------------------ clinic database


def _count_or_delete(session: Session, report: PurgeReport, table: str, model: Any, condition: Any) -> None:
    if report.dry_run:
        rows = session.execute(select(func.count()).select_from(model).where(condition)).scalar_one()
    else:
        rows = session.execute(delete(model).where(condition).execution_options(synchronize_session=False)).rowcount
    report.deleted[table] += rows


def _purge_escalations(session: Session, report: PurgeReport) -> None:
    closed_at = func.coalesce(Escalation.resolved_at, Escalation.updated_at, Escalation.created_at)
    ids = list(session.execute(
        select(Escalation.id).where(Escalation.status == "resolved", closed_at < report.cutoff)
    ).scalars())
    old_open = session.execute(
        select(func.count()).select_from(Escalation).where(Escalation.status == "open",
                                                           Escalation.created_at < report.cutoff)
    ).scalar_one()
    if old_open:
        report.kept["open escalations older than the cutoff"] = old_open
    for batch in _chunks(ids):
        for table, model in (("escalation_messages", EscalationMessage), ("escalation_notes", EscalationNote),
                             ("staff_replies", StaffReply), ("notifications", Notification)):
            _count_or_delete(session, report, table, model, model.escalation_id.in_(batch))
        _count_or_delete(session, report, "escalations", Escalation, Escalation.id.in_(batch))


def _purge_bookings(session: Session, report: PurgeReport) -> None:
    requested_for = func.coalesce(BookingRequest.preferred_time, BookingRequest.created_at)
    _count_or_delete(session, report, "booking_requests", BookingRequest,
                     and_(requested_for < report.cutoff, BookingRequest.created_at < report.cutoff))
    ids = list(session.execute(select(Booking.id).where(Booking.starts_at < report.cutoff)).scalars())
    for batch in _chunks(ids):
        if not report.dry_run:  # newer requests about an old booking keep their own details
            session.execute(update(BookingRequest).where(BookingRequest.booking_id.in_(batch))
                            .values(booking_id=None).execution_options(synchronize_session=False))
        _count_or_delete(session, report, "bookings", Booking, Booking.id.in_(batch))


def _purge_sms_contacts(session: Session, report: PurgeReport, active_senders: set[str]) -> None:
    opted_out = session.execute(
        select(func.count()).select_from(SmsContact).where(SmsContact.opted_out.is_(True))
    ).scalar_one()
    if opted_out:
        report.kept["SMS opt-outs (STOP)"] = opted_out
    touched = func.coalesce(SmsContact.updated_at, SmsContact.created_at)
    candidates = session.execute(
        select(SmsContact.id, SmsContact.phone).where(SmsContact.opted_out.is_(False), touched < report.cutoff)
    ).all()
    ids = [row.id for row in candidates if row.phone not in active_senders]
    for batch in _chunks(ids):
        _count_or_delete(session, report, "sms_contacts", SmsContact, SmsContact.id.in_(batch))


def format_report(report: PurgeReport) -> str:
    """The report as the command line prints it (counts only, never patient data)."""
    lines = [
        f"Retention {report.days} days: data older than {report.cutoff:%Y-%m-%d %H:%M} UTC; "
        f"audit events {report.audit_days} days (older than {report.audit_cutoff:%Y-%m-%d %H:%M} UTC).",
        "Dry run: nothing was deleted. Rows that would be deleted:" if report.dry_run else "Rows deleted:",
    ]
    width = max(len(t) for t in TABLES)
    lines += [f"  {table:{width}}  {report.deleted[table]:>8}" for table in TABLES]
    if report.kept:
        lines.append("Kept on purpose:")
        lines += [f"  {what}: {n}" for what, n in report.kept.items()]
    return "\n".join(lines)

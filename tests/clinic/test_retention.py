"""clinic.retention: purging data older than the retention period, on SQLite and PostgreSQL.

The tracker store is an ``events`` table with the layout of Rasa's SQLTrackerStore, in the same
database as the clinic's tables (as in a single-database deployment).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, select

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
    StaffUser,
    get_engine,
    session_scope,
)
from clinic.retention import TABLES, TRACKER_CONVERSATIONS, TRACKER_EVENTS, format_report, purge

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=400)  # older than the default 365 days
RECENT = NOW - timedelta(days=2)
ANCIENT = NOW - timedelta(days=2200)  # older than the audit trail's 2190 days

_metadata = MetaData()
EVENTS = Table(
    "events", _metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
MODELS = {
    "escalations": Escalation, "escalation_messages": EscalationMessage, "escalation_notes": EscalationNote,
    "staff_replies": StaffReply, "notifications": Notification, "bookings": Booking,
    "booking_requests": BookingRequest, "sms_contacts": SmsContact, "received_sms": ReceivedSms,
    "staff_sessions": StaffSession, "audit_events": AuditEvent, "insight_labels": InsightLabel,
    "patient_notes": PatientNote,
}


def _say(url: str, sender: str, *moments: datetime) -> None:
    """A conversation in the tracker store: a user and a bot event at each moment."""
    engine = get_engine(url)
    _metadata.create_all(engine)
    with engine.begin() as connection:
        for at in moments:
            for kind, text in (("user", "my number is 312-555-0100"), ("bot", "Thanks!")):
                connection.execute(EVENTS.insert().values(
                    sender_id=sender, type_name=kind, timestamp=at.timestamp(),
                    data=json.dumps({"event": kind, "text": text, "timestamp": at.timestamp()})))


def _escalation(session: Any, conversation: str, *, status: str, at: datetime, **extra: Any) -> Escalation:
    escalation = Escalation(conversation_id=conversation, channel="rest", reason="medical_question", status=status,
                            created_at=at, updated_at=at, resolved_at=at if status == "resolved" else None, **extra)
    session.add(escalation)
    session.flush()
    session.add_all([
        EscalationMessage(escalation_id=escalation.id, message_id="m1", reason="medical_question",
                          text="am I safe on lithium?", created_at=at),
        EscalationNote(escalation_id=escalation.id, text="called back", created_at=at),
        StaffReply(escalation_id=escalation.id, text="Hi, this is the clinic", status="delivered", created_at=at),
        Notification(escalation_id=escalation.id, notifier="slack", event="opened", status="sent",
                     next_attempt_at=at, created_at=at),
    ])
    return escalation


def _booking(session: Any, code: str, starts: datetime, conversation: str = "conv") -> Booking:
    booking = Booking(code=code, conversation_id=conversation, channel="rest", backend="builtin",
                      full_name="Ana Diaz", phone="+13125550100", starts_at=starts,
                      ends_at=starts + timedelta(minutes=30), chair=1, created_at=starts - timedelta(days=7),
                      updated_at=starts - timedelta(days=7))
    session.add(booking)
    session.flush()
    return booking


def _request(session: Any, code: str, created: datetime, preferred: datetime | None, **extra: Any) -> None:
    session.add(BookingRequest(code=code, conversation_id="conv", channel="rest", full_name="Ana Diaz",
                               phone="+13125550100", preferred_time=preferred, created_at=created, **extra))


@pytest.fixture
def seeded(database_url: str) -> str:
    """Old and recent data in every table; the names say which survive a 365-day purge."""
    _say(database_url, "idle-conversation", OLD, OLD + timedelta(hours=1))
    _say(database_url, "active-conversation", OLD, RECENT)  # old start, still going: kept whole
    _say(database_url, "recent-conversation", RECENT)
    _say(database_url, "old-but-open-escalation", OLD)
    _say(database_url, "+13125550111", RECENT)  # an SMS conversation, still active
    with session_scope(database_url) as session:
        staff = StaffUser(username="dana", display_name="Dana", password_hash="x")
        session.add(staff)
        session.flush()
        _escalation(session, "idle-conversation", status="resolved", at=OLD)
        _escalation(session, "recent-conversation", status="resolved", at=RECENT)
        _escalation(session, "old-but-open-escalation", status="open", at=OLD)
        old_booking = _booking(session, "OLD001", OLD)
        _booking(session, "NEW001", NOW + timedelta(days=10))
        _request(session, "REQOLD", OLD - timedelta(days=3), OLD)  # asked for a time long past
        _request(session, "REQNOT", OLD, None)  # a request without a time, made long ago
        _request(session, "REQNEW", RECENT, NOW + timedelta(days=5))
        _request(session, "REQMOV", RECENT, NOW + timedelta(days=3), kind="reschedule", booking_id=old_booking.id)
        session.add_all([
            SmsContact(phone="+13125550100", opted_out=True, opted_out_at=OLD, created_at=OLD, updated_at=OLD),
            SmsContact(phone="+13125550101", opted_out=False, created_at=OLD, updated_at=OLD),
            SmsContact(phone="+13125550111", opted_out=False, created_at=OLD, updated_at=OLD),  # still texting
            SmsContact(phone="+13125550122", opted_out=False, created_at=RECENT, updated_at=RECENT),
            StaffSession(token_hash="a" * 64, user_id=staff.id, csrf_token="c", expires_at=NOW - timedelta(hours=1)),
            StaffSession(token_hash="b" * 64, user_id=staff.id, csrf_token="c", expires_at=NOW + timedelta(hours=1)),
            InsightLabel(event_id=1, conversation_id="idle-conversation", intent="faq_safety", message_at=OLD),
            InsightLabel(event_id=2, conversation_id="recent-conversation", intent="faq_safety", message_at=RECENT),
            PatientNote(patient_key="phone:+13125550123", text="prefers mornings", created_at=OLD),
            PatientNote(patient_key="phone:+13125550123", text="asked about parking", created_at=RECENT),
            AuditEvent(at=OLD, action="view", escalation_id=1, username="dana"),
            AuditEvent(at=ANCIENT, action="view", escalation_id=1, username="dana"),
        ])
    return database_url


EXPECTED = {
    TRACKER_CONVERSATIONS: 1, TRACKER_EVENTS: 4, "escalations": 1, "escalation_messages": 1,
    "escalation_notes": 1, "staff_replies": 1, "notifications": 1, "bookings": 1, "booking_requests": 2,
    "sms_contacts": 1, "received_sms": 0, "staff_sessions": 1, "audit_events": 1, "patient_notes": 1,
    "insight_labels": 1,
}


def _counts(url: str) -> dict[str, int]:
    with session_scope(url) as session:
        counts = {name: session.execute(select(func.count()).select_from(model)).scalar_one()
                  for name, model in MODELS.items()}
        counts[TRACKER_EVENTS] = session.execute(select(func.count()).select_from(EVENTS)).scalar_one()
    return counts


def _senders(url: str) -> list[str]:
    with get_engine(url).connect() as connection:
        return sorted(connection.execute(select(EVENTS.c.sender_id).distinct()).scalars())


def test_a_dry_run_counts_and_deletes_nothing(seeded: str) -> None:
    before = _counts(seeded)

    report = purge(dry_run=True, now=NOW, database_url=seeded, tracker_url=seeded)

    assert report.dry_run and report.days == 365 and report.audit_days == 2190
    assert report.deleted == EXPECTED
    assert _counts(seeded) == before
    assert report.kept == {"conversations with an open escalation": 1, "open escalations older than the cutoff": 1,
                           "SMS opt-outs (STOP)": 1}


def test_old_data_is_purged_and_recent_data_is_untouched(seeded: str) -> None:
    before = _counts(seeded)

    report = purge(now=NOW, database_url=seeded, tracker_url=seeded)

    assert report.deleted == EXPECTED and report.total == sum(EXPECTED.values()) - 1
    after = _counts(seeded)
    assert {name: before[name] - after[name] for name in after} == {
        name: n for name, n in EXPECTED.items() if name != TRACKER_CONVERSATIONS}
    assert _senders(seeded) == ["+13125550111", "active-conversation", "old-but-open-escalation",
                                "recent-conversation"]
    with get_engine(seeded).connect() as connection:  # the active conversation keeps its old turns too
        assert connection.execute(select(func.count()).where(EVENTS.c.sender_id == "active-conversation")
                                  ).scalar_one() == 4
    with session_scope(seeded) as session:
        assert sorted((e.conversation_id, e.status) for e in session.execute(select(Escalation)).scalars()) == [
            ("old-but-open-escalation", "open"), ("recent-conversation", "resolved")]
        assert session.execute(select(func.count()).select_from(EscalationMessage)).scalar_one() == 2
        assert [b.code for b in session.execute(select(Booking)).scalars()] == ["NEW001"]
        requests = {r.code: r.booking_id for r in session.execute(select(BookingRequest)).scalars()}
        assert requests == {"REQNEW": None, "REQMOV": None}  # the newer request outlives its old booking
        assert sorted(c.phone for c in session.execute(select(SmsContact)).scalars()) == [
            "+13125550100", "+13125550111", "+13125550122"]
        assert [s.token_hash[0] for s in session.execute(select(StaffSession)).scalars()] == ["b"]
        assert [a.at.year for a in session.execute(select(AuditEvent)).scalars()] == [OLD.year]

    again = purge(now=NOW, database_url=seeded, tracker_url=seeded)
    assert again.total == 0 and after == _counts(seeded)


def test_a_shorter_period_reaches_more_and_a_longer_one_less(seeded: str) -> None:
    assert purge(days=3650, audit_days=3650, dry_run=True, now=NOW, database_url=seeded,
                 tracker_url=seeded).deleted == {**dict.fromkeys(TABLES, 0), "staff_sessions": 1}

    report = purge(days=1, dry_run=True, now=NOW, database_url=seeded, tracker_url=seeded)

    assert report.deleted[TRACKER_CONVERSATIONS] == 4  # all but the one with an open escalation
    assert report.deleted["escalations"] == 2 and report.deleted["bookings"] == 1
    assert report.audit_days == 2190  # the audit trail keeps its own setting


def test_the_periods_come_from_the_clinic_profile(seeded: str, profile_file, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_PROFILE", str(profile_file(retention_days=500, audit_retention_days=3000)))

    report = purge(dry_run=True, now=NOW, database_url=seeded, tracker_url=seeded)

    assert (report.days, report.audit_days) == (500, 3000)
    assert report.cutoff == NOW - timedelta(days=500) and report.deleted[TRACKER_EVENTS] == 0


def test_without_a_tracker_table_only_the_clinic_database_is_purged(tmp_path: Path, sqlite_url: str) -> None:
    tracker = f"sqlite:///{tmp_path / 'no-conversations-yet.db'}"
    with session_scope(sqlite_url) as session:
        _booking(session, "OLD001", OLD)

    report = purge(now=NOW, database_url=sqlite_url, tracker_url=tracker)

    assert report.deleted[TRACKER_EVENTS] == 0 and report.deleted["bookings"] == 1
    get_engine(tracker).dispose()


@pytest.mark.parametrize("days", [0, -5])
def test_a_period_below_one_day_is_refused(sqlite_url: str, days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        purge(days=days, database_url=sqlite_url, tracker_url=sqlite_url)


def test_the_report_holds_counts_only(seeded: str) -> None:
    text = format_report(purge(dry_run=True, now=NOW, database_url=seeded, tracker_url=seeded))

    assert "Dry run: nothing was deleted" in text and "Kept on purpose" in text
    assert "SMS opt-outs (STOP): 1" in text
    assert "Ana" not in text and "555" not in text and "lithium" not in text


def test_notes_on_a_patient_older_than_the_period_are_purged(tmp_path: Path, sqlite_url: str) -> None:
    tracker = f"sqlite:///{tmp_path / 'no-conversations-yet.db'}"
    with session_scope(sqlite_url) as session:
        session.add_all([PatientNote(patient_key="phone:+13125550123", text="old", created_at=OLD),
                         PatientNote(patient_key="phone:+13125550123", text="recent", created_at=NOW)])

    report = purge(now=NOW, database_url=sqlite_url, tracker_url=tracker)

    with session_scope(sqlite_url) as session:
        assert list(session.execute(select(PatientNote.text)).scalars()) == ["recent"]
    assert report.deleted["patient_notes"] == 1
    get_engine(tracker).dispose()

"""Tests of the staff console, with fakes of the interfaces it calls.

``clinic.staff.transcript``, ``clinic.rasa_api`` and ``clinic.staff.notifications`` belong to other
modules (Rasa's tracker store and HTTP API, the notifier outbox); the console imports them
lazily, so a test replaces them in ``sys.modules`` with the fakes below.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class FakeTranscriptEntry:
    id: int
    at: datetime
    sender: str
    text: str
    staff_name: str | None = None


@dataclass(frozen=True)
class FakeDelivery:
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class FakeNotificationStatus:
    escalation_id: int
    notifier: str
    event: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None


@dataclass
class FakeRasa:
    """Stands in for the tracker store, Rasa's HTTP API and the notifier outbox.

    Attributes:
        transcripts: conversation id -> entries.
        sent: ``(conversation_id, text, staff_name)`` of every staff reply delivered.
        reply_database_urls: the ``database_url`` each reply was sent with (the SMS opt-outs).
        handed_back: conversation ids handed back to the assistant.
        reply_error / hand_back_error: when set, delivery fails with this reason.
        transcript_error: when set, reading the transcript raises it.
        failing / by_escalation: notification statuses.
    """

    transcripts: dict[str, list[FakeTranscriptEntry]] = field(default_factory=dict)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    handed_back: list[str] = field(default_factory=list)
    reply_error: str | None = None
    hand_back_error: str | None = None
    transcript_error: Exception | None = None
    reply_database_urls: list[str | None] = field(default_factory=list)
    failing: list[FakeNotificationStatus] = field(default_factory=list)
    by_escalation: dict[int, list[FakeNotificationStatus]] = field(default_factory=dict)

    def say(self, conversation_id: str, sender: str, text: str, staff_name: str | None = None) -> FakeTranscriptEntry:
        """Adds a transcript entry (ids increase across all conversations)."""
        next_id = 1 + max((e.id for entries in self.transcripts.values() for e in entries), default=0)
        entry = FakeTranscriptEntry(next_id, datetime.now(timezone.utc), sender, text, staff_name)
        self.transcripts.setdefault(conversation_id, []).append(entry)
        return entry

    # clinic.staff.transcript
    def read_transcript(self, conversation_id: str, after_id: int = 0, tracker_url: str | None = None) -> list[Any]:
        if self.transcript_error is not None:
            raise self.transcript_error
        return [e for e in self.transcripts.get(conversation_id, []) if e.id > after_id]

    # clinic.rasa_api
    def send_staff_reply(self, conversation_id: str, text: str, *, staff_name: str,
                         database_url: str | None = None) -> FakeDelivery:
        self.reply_database_urls.append(database_url)
        if self.reply_error:
            return FakeDelivery(False, self.reply_error)
        self.sent.append((conversation_id, text, staff_name))
        self.say(conversation_id, "staff", text, staff_name)
        return FakeDelivery(True)

    def hand_back(self, conversation_id: str) -> FakeDelivery:
        if self.hand_back_error:
            return FakeDelivery(False, self.hand_back_error)
        self.handed_back.append(conversation_id)
        return FakeDelivery(True)

    # clinic.staff.notifications
    def list_for_escalation(self, escalation_id: int, database_url: str | None = None) -> list[Any]:
        return list(self.by_escalation.get(escalation_id, []))

    def failing_notifications(self, database_url: str | None = None) -> list[Any]:
        return list(self.failing)

    def modules(self) -> dict[str, types.ModuleType]:
        """Fake ``clinic.staff.transcript``, ``clinic.rasa_api`` and ``clinic.staff.notifications`` modules."""
        transcript = types.ModuleType("clinic.staff.transcript")
        transcript.read_transcript = self.read_transcript
        transcript.TranscriptEntry = FakeTranscriptEntry
        rasa_api = types.ModuleType("clinic.rasa_api")
        rasa_api.send_staff_reply = self.send_staff_reply
        rasa_api.hand_back = self.hand_back
        rasa_api.Delivery = FakeDelivery
        notifications = types.ModuleType("clinic.staff.notifications")
        notifications.list_for_escalation = self.list_for_escalation
        notifications.failing = self.failing_notifications
        notifications.NotificationStatus = FakeNotificationStatus
        return {
            "clinic.staff.transcript": transcript,
            "clinic.rasa_api": rasa_api,
            "clinic.staff.notifications": notifications,
        }


def install(monkeypatch: Any) -> FakeRasa:
    """Replaces the three modules for one test; returns the fake to script and inspect."""
    fake = FakeRasa()
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    return fake

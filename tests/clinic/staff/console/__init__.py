"""Tests of the staff console, with a fake of the services the inbox calls.

Rasa's tracker store and HTTP API and the notifier outbox are reached through
``clinic.staff.inbox.services``; :func:`install` replaces it for one test with :class:`FakeRasa`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from clinic.rasa_api import Delivery
from clinic.staff import inbox
from clinic.staff.notifications import NotificationStatus
from clinic.staff.transcript import TranscriptEntry


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

    transcripts: dict[str, list[TranscriptEntry]] = field(default_factory=dict)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    handed_back: list[str] = field(default_factory=list)
    reply_error: str | None = None
    hand_back_error: str | None = None
    transcript_error: Exception | None = None
    reply_database_urls: list[str | None] = field(default_factory=list)
    failing: list[NotificationStatus] = field(default_factory=list)
    by_escalation: dict[int, list[NotificationStatus]] = field(default_factory=dict)

    def say(self, conversation_id: str, sender: str, text: str, staff_name: str | None = None) -> TranscriptEntry:
        """Adds a transcript entry (ids increase across all conversations)."""
        next_id = 1 + max((e.id for entries in self.transcripts.values() for e in entries), default=0)
        entry = TranscriptEntry(next_id, datetime.now(timezone.utc), sender, text, staff_name)
        self.transcripts.setdefault(conversation_id, []).append(entry)
        return entry

    # clinic.staff.transcript
    def read_transcript(self, conversation_id: str, after_id: int = 0, tracker_url: str | None = None) -> list[Any]:
        if self.transcript_error is not None:
            raise self.transcript_error
        return [e for e in self.transcripts.get(conversation_id, []) if e.id > after_id]

    # clinic.rasa_api
    def send_staff_reply(self, conversation_id: str, text: str, *, staff_name: str,
                         database_url: str | None = None) -> Delivery:
        self.reply_database_urls.append(database_url)
        if self.reply_error:
            return Delivery(False, self.reply_error)
        self.sent.append((conversation_id, text, staff_name))
        self.say(conversation_id, "staff", text, staff_name)
        return Delivery(True)

    def hand_back(self, conversation_id: str) -> Delivery:
        if self.hand_back_error:
            return Delivery(False, self.hand_back_error)
        self.handed_back.append(conversation_id)
        return Delivery(True)

    # clinic.staff.notifications
    def list_for_escalation(self, escalation_id: int, database_url: str | None = None) -> list[Any]:
        return list(self.by_escalation.get(escalation_id, []))

    def failing_notifications(self, database_url: str | None = None) -> list[Any]:
        return list(self.failing)

    def services(self) -> inbox.Services:
        """The inbox's services, answered by this fake (the SMS opt-outs stay the real ones)."""
        return inbox.Services(
            read_transcript=self.read_transcript,
            send_staff_reply=self.send_staff_reply,
            hand_back=self.hand_back,
            list_notifications=self.list_for_escalation,
            failing_notifications=self.failing_notifications,
        )


def install(monkeypatch: pytest.MonkeyPatch) -> FakeRasa:
    """Makes the inbox use a fake for one test; returns the fake to script and inspect."""
    fake = FakeRasa()
    monkeypatch.setattr(inbox, "services", fake.services())
    return fake

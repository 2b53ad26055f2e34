"""Staff notes about a patient that stay with them across escalations.

An escalation's own notes (:func:`clinic.staff.inbox.add_note`) end with it; what staff learn
about a patient ("prefers a call after 5 PM", "has a consult booked with Dr. Lee") should be
there the next time the same patient is escalated. A patient is their phone number on SMS (the
same number is the same person across conversations) and otherwise their conversation id (a
website visitor has no other stable identity). Notes are internal: never sent to the patient,
never logged with their text; adding one and listing them are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from clinic.channels import SMS_CHANNEL
from clinic.clock import as_utc
from clinic.contact import normalize_phone
from clinic.db import Escalation, PatientNote, session_scope
from clinic.staff import audit
from clinic.staff.accounts import StaffMember
from clinic.staff.inbox import NoteView, NotFound, StaffRef, validate_text

LIST_LIMIT = 200
# Twilio addresses of a phone number, as SMS conversation ids may carry them ("whatsapp:+1...").
_TWILIO_SCHEMES = ("whatsapp", "sms", "mms", "tel", "rcs")


@dataclass(frozen=True)
class PatientNotes:
    """The notes about one patient, newest first, and how the patient is identified."""

    key: str
    kind: str  # phone | conversation
    notes: list[NoteView]


def sms_phone(conversation_id: str) -> str | None:
    """The E.164 number of an SMS conversation id (``+1...`` or a Twilio address), or None."""
    scheme, _, rest = conversation_id.partition(":")
    number = rest if rest and scheme.lower() in _TWILIO_SCHEMES else conversation_id
    return normalize_phone(number) if number.startswith("+") else None


def patient_key(conversation_id: str, channel: str) -> str:
    """The key notes are kept under: ``phone:+1...`` on SMS, ``conversation:<id>`` otherwise."""
    phone = sms_phone(conversation_id) if channel == SMS_CHANNEL else None
    return f"phone:{phone}" if phone else f"conversation:{conversation_id}"


def _key_of(session: Session, escalation_id: int) -> tuple[Escalation, str]:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"No escalation {escalation_id}.")
    return escalation, patient_key(escalation.conversation_id, escalation.channel)


def _view(note: PatientNote) -> NoteView:
    author = note.author
    ref = StaffRef(author.id, author.username, author.display_name) if author is not None else None
    return NoteView(note.id, ref, note.text, as_utc(note.created_at))


def _notes(session: Session, key: str, limit: int) -> list[NoteView]:
    rows = session.execute(
        select(PatientNote)
        .options(selectinload(PatientNote.author))
        .where(PatientNote.patient_key == key)
        .order_by(PatientNote.created_at.desc(), PatientNote.id.desc())
        .limit(max(1, limit))
    ).scalars()
    return [_view(row) for row in rows]


def notes_for(escalation_id: int, *, database_url: str | None = None, limit: int = LIST_LIMIT) -> PatientNotes:
    """The notes about the patient of an escalation, newest first (not audited: the caller's view is).

    Raises:
        NotFound: no such escalation.
    """
    with session_scope(database_url) as session:
        _escalation, key = _key_of(session, escalation_id)
        return PatientNotes(key, key.partition(":")[0], _notes(session, key, limit))


def list_notes(
    escalation_id: int, user: StaffMember, *, via: str = "api", database_url: str | None = None
) -> PatientNotes:
    """:func:`notes_for`, recorded in the audit log as a view of the escalation.

    Raises:
        NotFound: no such escalation.
    """
    with session_scope(database_url) as session:
        escalation, key = _key_of(session, escalation_id)
        notes = _notes(session, key, LIST_LIMIT)
        audit.record(session, user, "view", escalation, f"patient notes ({len(notes)}); via {via}")
        return PatientNotes(key, key.partition(":")[0], notes)


def add_note(
    escalation_id: int, user: StaffMember, text: Any, *, via: str = "console", database_url: str | None = None
) -> NoteView:
    """Adds a note about the patient of an escalation (open or resolved); audited, without its text.

    Raises:
        InvalidText: empty, too long or not text.
        NotFound: no such escalation.
    """
    cleaned = validate_text(text, "Note")
    with session_scope(database_url) as session:
        escalation, key = _key_of(session, escalation_id)
        note = PatientNote(patient_key=key, author_id=user.id, escalation_id=escalation.id, text=cleaned)
        session.add(note)
        session.flush()
        audit.record(session, user, "note", escalation, f"patient note {note.id}; via {via}")
        session.refresh(note)
        return _view(note)

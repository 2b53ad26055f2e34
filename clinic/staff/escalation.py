"""Escalations: conversations handed to clinic staff (recording them; staff work them through
:mod:`clinic.staff.inbox`, which lists and resolves them).

One open escalation per conversation. A later escalating message is attached to it; a crisis
or emergency upgrades it to urgent. Recording is idempotent per patient message, so a retry
(or the reconciler re-recording what a failed action missed) never creates a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic.clock import utcnow
from clinic.db import Escalation, EscalationMessage, session_scope
from clinic.reading.language import LANGUAGES
from clinic.staff.notifications import enqueue  # staff notifications: same transaction (outbox)

logger = logging.getLogger(__name__)

URGENT_REASONS = frozenset({"crisis", "emergency"})
REASONS = frozenset({"crisis", "emergency", "medical_question", "asked_for_staff", "safety_checkin"})
_REASON_RANK = {"safety_checkin": -1, "asked_for_staff": 0, "medical_question": 1, "emergency": 2, "crisis": 3}


@dataclass(frozen=True)
class EscalationResult:
    """What happened when a message escalated."""

    escalation_id: int
    created: bool
    upgraded: bool
    urgency: str


def escalate(
    *,
    conversation_id: str,
    channel: str,
    reason: str,
    message_id: str | None,
    text: str | None,
    guard_reason: dict[str, Any] | None = None,
    language: str | None = None,
    database_url: str | None = None,
) -> EscalationResult:
    """Opens an escalation for the conversation, or attaches the message to the open one.

    Args:
        conversation_id: Rasa sender id.
        channel: the patient's channel (``rest``, ``socketio``, ``twilio``...).
        reason: one of :data:`REASONS`.
        message_id: Rasa message id of the triggering patient message (for idempotency).
        text: the patient's message (stored for staff; never logged).
        guard_reason: why the safety guard fired, if it did.
        language: the conversation's language (its ``language`` slot: ``en`` or ``es``), so
            staff know who can take it; the latest known value is kept.
        database_url: overrides ``CLINIC_DATABASE_URL`` (tests).

    Returns:
        The escalation's id and whether it was created or upgraded to urgent.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown escalation reason {reason!r}")
    for attempt in (1, 2):
        try:
            with session_scope(database_url) as session:
                return _escalate(session, conversation_id, channel, reason, message_id, text, guard_reason,
                                 _known_language(language))
        except IntegrityError:
            # Two messages of one conversation escalated at once: the other transaction
            # opened the escalation first; attach to it on the second attempt.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _escalate(
    session: Session,
    conversation_id: str,
    channel: str,
    reason: str,
    message_id: str | None,
    text: str | None,
    guard_reason: dict[str, Any] | None,
    language: str | None,
) -> EscalationResult:
    urgency = "urgent" if reason in URGENT_REASONS else "normal"
    escalation = _open_escalation(session, conversation_id)
    created = upgraded = False
    if escalation is None:
        escalation = _new_escalation(session, conversation_id, channel, reason, urgency, message_id, text,
                                     guard_reason, language)
        created = True
    else:
        if language is not None:  # the patient may have switched language since it opened
            escalation.language = language
        upgraded = _update_escalation(session, escalation, reason, urgency)
    if message_id is not None and not _has_message(session, escalation.id, message_id):
        session.add(
            EscalationMessage(
                escalation_id=escalation.id,
                message_id=message_id,
                reason=reason,
                text=text,
                guard_reason=guard_reason,
            )
        )
    session.flush()
    logger.info(
        "escalation %s %s (reason=%s urgency=%s channel=%s)",
        escalation.id,
        "opened" if created else ("upgraded" if upgraded else "updated"),
        reason,
        escalation.urgency,
        channel,
    )
    return EscalationResult(escalation.id, created, upgraded, escalation.urgency)


def _new_escalation(
    session: Session,
    conversation_id: str,
    channel: str,
    reason: str,
    urgency: str,
    message_id: str | None,
    text: str | None,
    guard_reason: dict[str, Any] | None,
    language: str | None,
) -> Escalation:
    """Opens an escalation for the conversation and queues the "opened" staff notification."""
    escalation = Escalation(
        conversation_id=conversation_id,
        channel=channel,
        reason=reason,
        language=language,
        urgency=urgency,
        status="open",
        trigger_message_id=message_id,
        trigger_text=text,
        guard_reason=guard_reason,
    )
    session.add(escalation)
    session.flush()
    enqueue(session, escalation, "opened")
    return escalation


def _update_escalation(session: Session, escalation: Escalation, reason: str, urgency: str) -> bool:
    """Raises an open escalation's urgency and reason when the new message calls for it.

    Returns:
        Whether it became urgent now (the "urgent" staff notification is then queued).
    """
    upgraded = False
    if urgency == "urgent" and escalation.urgency != "urgent":
        escalation.urgency = "urgent"
        upgraded = True
        enqueue(session, escalation, "urgent")
    if _REASON_RANK[reason] > _REASON_RANK.get(escalation.reason, 0):
        escalation.reason = reason
    escalation.updated_at = utcnow()
    return upgraded


def _known_language(language: str | None) -> str | None:
    """The language if it is one the assistant speaks; anything else is not worth showing staff."""
    return language if language in LANGUAGES else None


def _open_escalation(session: Session, conversation_id: str) -> Escalation | None:
    """The conversation's open escalation, locked for this transaction (PostgreSQL)."""
    return session.execute(
        select(Escalation)
        .where(Escalation.conversation_id == conversation_id, Escalation.status == "open")
        .with_for_update()
    ).scalar_one_or_none()


def _has_message(session: Session, escalation_id: int, message_id: str) -> bool:
    return (
        session.execute(
            select(EscalationMessage.id).where(
                EscalationMessage.escalation_id == escalation_id,
                EscalationMessage.message_id == message_id,
            )
        ).first()
        is not None
    )


def is_recorded(conversation_id: str, message_id: str, database_url: str | None = None) -> bool:
    """Whether a patient message is already attached to an escalation of the conversation."""
    with session_scope(database_url) as session:
        return (
            session.execute(
                select(EscalationMessage.id)
                .join(Escalation)
                .where(
                    Escalation.conversation_id == conversation_id,
                    EscalationMessage.message_id == message_id,
                )
            ).first()
            is not None
        )


def attach_message(
    *,
    conversation_id: str,
    channel: str,
    message_id: str | None,
    text: str | None,
    language: str | None = None,
    database_url: str | None = None,
) -> int:
    """Attaches a message written while staff hold the conversation to its open escalation.

    Staff see it live in the console. When no escalation is open (it was closed without
    handing the conversation back), a new one is opened: the patient believes a person is
    reading, so a person must.

    Args:
        language: the conversation's language now (``en`` or ``es``); kept on the escalation.

    Returns:
        The escalation's id.
    """
    language = _known_language(language)
    with session_scope(database_url) as session:
        escalation = _open_escalation(session, conversation_id)
        if escalation is not None:
            if language is not None:
                escalation.language = language
            if message_id is None or not _has_message(session, escalation.id, message_id):
                session.add(
                    EscalationMessage(
                        escalation_id=escalation.id,
                        message_id=message_id or f"handoff-{utcnow().timestamp()}",
                        reason="handoff",
                        text=text,
                    )
                )
            escalation.last_patient_message_at = utcnow()
            logger.info("message attached to escalation %s (channel=%s)", escalation.id, channel)
            return escalation.id
    result = escalate(
        conversation_id=conversation_id,
        channel=channel,
        reason="asked_for_staff",
        message_id=message_id,
        text=text,
        language=language,
        database_url=database_url,
    )
    return result.escalation_id

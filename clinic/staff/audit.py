"""The audit trail: who viewed, looked up or acted on which escalation, and who signed in.

Events are written in the same transaction as the change they describe when a session is
passed, so a claim without its audit event cannot happen. ``detail`` is a short technical
note (``"via api"``, ``"reply 12 failed: ..."``) and never holds patient text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.clock import as_utc, utcnow
from clinic.db import AuditEvent, session_scope

logger = logging.getLogger(__name__)

ACTIONS = frozenset({
    "login",
    "login_failed",
    "logout",
    "reauth",
    "reauth_failed",
    "view",
    "find",
    "inbox_view",  # a listing that showed previews of patient messages
    "claim",
    "unassign",
    "reply",
    "note",
    "resolve",
    "resolve_failed",
    # bookings (clinic/staff/console/bookings.py)
    "booking_view",
    "booking_request_confirm",
    "booking_request_cancel",
    "booking_cancel",
    "booking_cancel_failed",
    # insights (clinic/staff/console/insights.py): the list of messages the assistant could not answer
    "insights_unanswered_view",
    "insights_mark",
    # saved replies (clinic/staff/saved_replies.py)
    "saved_reply_create",
    "saved_reply_edit",
    "saved_reply_retire",
    "saved_reply_restore",
})
DETAIL_MAX = 255


@dataclass(frozen=True)
class AuditEntry:
    """One audit event."""

    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    escalation_id: int | None
    conversation_id: str | None
    detail: str | None


def record(
    session_or_url: Session | str | None,
    user: Any | None,
    action: str,
    escalation: Any | None = None,
    detail: str | None = None,
    *,
    username: str | None = None,
    conversation_id: str | None = None,
) -> None:
    """Writes an audit event.

    Args:
        session_or_url: an open session (the event joins its transaction), or a database URL
            (None: ``CLINIC_DATABASE_URL``) for an event of its own.
        user: who acted: anything with ``id`` and ``username`` (a ``StaffMember`` or a
            ``StaffUser``), or None (e.g. a failed sign-in with an unknown username).
        action: one of :data:`ACTIONS`.
        escalation: the escalation acted on: anything with ``id`` and ``conversation_id``.
        detail: a short note without patient text (cut to 255 characters).
        username: the username to record when there is no ``user``.
        conversation_id: the conversation concerned when there is no ``escalation`` (bookings).

    Raises:
        ValueError: unknown action.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        at=utcnow(),
        user_id=getattr(user, "id", None),
        username=getattr(user, "username", None) or username,
        action=action,
        escalation_id=getattr(escalation, "id", None),
        conversation_id=getattr(escalation, "conversation_id", None) or conversation_id,
        detail=detail[:DETAIL_MAX] if detail else None,
    )
    if isinstance(session_or_url, Session):
        session_or_url.add(event)
    else:
        with session_scope(session_or_url) as session:
            session.add(event)
    logger.info("audit: %s by %s (escalation %s)", action, event.username or "-", event.escalation_id or "-")


def list_events(
    database_url: str | None = None,
    *,
    escalation_id: int | None = None,
    username: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit events, newest first.

    Args:
        database_url: overrides ``CLINIC_DATABASE_URL``.
        escalation_id: only events about this escalation.
        username: only events of this username.
        action: only this action.
        before_id: only events older than this one (paging).
        limit: at most this many (1-1000).
    """
    limit = max(1, min(limit, 1000))
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if escalation_id is not None:
        query = query.where(AuditEvent.escalation_id == escalation_id)
    if username:
        query = query.where(AuditEvent.username == username.strip().lower())
    if action:
        query = query.where(AuditEvent.action == action)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    with session_scope(database_url) as session:
        return [_entry(row) for row in session.execute(query).scalars()]


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=as_utc(row.at),
        user_id=row.user_id,
        username=row.username,
        action=row.action,
        escalation_id=row.escalation_id,
        conversation_id=row.conversation_id,
        detail=row.detail,
    )

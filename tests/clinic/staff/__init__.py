"""Tests of clinic.staff, and what other tests read or change in the clinic database directly:
:func:`stored_escalations` (the rows, with their messages) and :func:`mark_resolved` (standing in
for a staff member resolving)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from clinic.clock import utcnow
from clinic.db import Escalation, session_scope


def stored_escalations(status: str | None = "open", database_url: str | None = None) -> list[Escalation]:
    """The escalation rows with their messages, urgent first then oldest first; ``status=None``:
    all of them. (Staff list escalations through :func:`clinic.staff.inbox.list_escalations`.)"""
    with session_scope(database_url) as session:
        query = select(Escalation).options(selectinload(Escalation.messages))
        if status:
            query = query.where(Escalation.status == status)
        query = query.order_by((Escalation.urgency == "urgent").desc(), Escalation.created_at)
        return list(session.execute(query).scalars())


def mark_resolved(database_url: str | None, escalation_id: int) -> None:
    """Resolves an open escalation in the database directly, as :func:`clinic.staff.inbox.resolve`
    does once Rasa took the conversation back (no Rasa, no staff member, no audit event)."""
    now = utcnow()
    with session_scope(database_url) as session:
        changed = session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id, Escalation.status == "open")
            .values(status="resolved", resolved_at=now, updated_at=now)
        ).rowcount
    assert changed == 1, f"escalation {escalation_id} was not open"

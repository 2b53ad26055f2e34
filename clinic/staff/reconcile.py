"""Records escalations that a failed action call missed ("nothing lost").

When the action server is down, Rasa still sends the crisis resources (they are rendered by
Rasa itself) and logs ``action_crisis_protocol`` / ``action_escalate_to_staff`` as executed, but
no ``escalation_id`` slot is set after it. This module scans the tracker store for such turns
and records the escalation, once, for the message that triggered it.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, Table, select

from clinic.clock import utcnow
from clinic.db import get_engine
from clinic.settings import tracker_store_url
from clinic.staff.escalation import escalate, is_recorded

logger = logging.getLogger(__name__)
ESCALATING_ACTIONS = ("action_crisis_protocol", "action_escalate_to_staff")


def _missed_turns(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The escalating turns of one conversation that set no ``escalation_id``."""
    missed, user, crisis_kind = [], None, None
    pending: dict[str, Any] | None = None
    for event in events:
        kind = event.get("event")
        if kind == "slot" and event.get("name") == "crisis_kind":
            crisis_kind = event.get("value")
        if kind == "slot" and event.get("name") == "escalation_id" and event.get("value") is not None:
            pending = None
        if kind in ("user", "action") and pending is not None:
            missed.append(pending)
            pending = None
        if kind == "user":
            user = event
        elif kind == "action" and event.get("name") in ESCALATING_ACTIONS and user is not None:
            pending = {"action": event["name"], "user": user, "crisis_kind": crisis_kind}
    if pending is not None:
        missed.append(pending)
    return missed


def _reason(turn: dict[str, Any]) -> str:
    if turn["action"] == "action_crisis_protocol":
        return "emergency" if turn["crisis_kind"] == "emergency" else "crisis"
    intent = ((turn["user"].get("parse_data") or {}).get("intent") or {}).get("name")
    return "asked_for_staff" if intent == "request_human" else "medical_question"


def reconcile(tracker_url: str | None = None, database_url: str | None = None, days: int = 7) -> int:
    """Records every missed escalation of the last ``days`` days; returns how many."""
    engine = get_engine(tracker_url or tracker_store_url())
    metadata = MetaData()
    try:
        events_table = Table("events", metadata, autoload_with=engine)
    except Exception:  # no conversation yet: the tracker store has not created its table
        return 0
    since = (utcnow() - timedelta(days=days)).timestamp()
    with engine.connect() as connection:
        senders = connection.execute(
            select(events_table.c.sender_id)
            .where(events_table.c.action_name.in_(ESCALATING_ACTIONS), events_table.c.timestamp >= since)
            .distinct()
        ).scalars().all()
        recorded = 0
        for sender in senders:
            rows = connection.execute(
                select(events_table.c.data).where(events_table.c.sender_id == sender).order_by(events_table.c.id)
            ).scalars()
            for turn in _missed_turns([json.loads(row) for row in rows]):
                user = turn["user"]
                if (user.get("timestamp") or since) < since:
                    continue
                # Rasa sets a message id; a stable stand-in keeps older events idempotent too
                message_id = user.get("message_id") or f"ts-{user.get('timestamp')}"
                if is_recorded(sender, message_id, database_url):
                    continue
                escalate(
                    conversation_id=sender,
                    channel=user.get("input_channel") or "unknown",
                    reason=_reason(turn),
                    message_id=message_id,
                    text=user.get("text"),
                    guard_reason=(user.get("parse_data") or {}).get("guard"),
                    database_url=database_url,
                )
                recorded += 1
    if recorded:
        logger.warning("reconciler recorded %s escalation(s) that a failed action call missed", recorded)
    return recorded

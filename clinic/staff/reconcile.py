"""Records escalations that a failed action call missed ("nothing lost"), and holds their
conversations for staff.

When the action server is down or hung, Rasa still sends the crisis resources (they are rendered
by Rasa itself) and logs ``action_crisis_protocol`` / ``action_escalate_to_staff`` as executed,
but no ``escalation_id`` slot is set after it. This module scans the tracker store for such turns
and records the escalation, once, for the message that triggered it (a crisis as urgent).

A conversation with such a turn and an open escalation is then put into hand-off (its
``handoff`` slot, through Rasa's HTTP API) unless it is in hand-off already: the patient was
told the clinic's team would take it, so the assistant must not answer their next messages as if
nothing happened. (A crisis is in hand-off already: the hand-off policy sets it with the crisis
resources.) A hand-off that could not be set is tried again in the next round.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import MetaData, Table, select

from clinic.clock import utcnow
from clinic.db import Escalation, get_engine, session_scope
from clinic.rasa_api import HANDOFF_SLOT, Delivery, hold_for_staff
from clinic.reading.language import ENGLISH
from clinic.settings import tracker_store_url
from clinic.staff.escalation import escalate, is_recorded

logger = logging.getLogger(__name__)
ESCALATING_ACTIONS = ("action_crisis_protocol", "action_escalate_to_staff")
LANGUAGE_SLOT = "language"
_INITIAL_LANGUAGE = ENGLISH  # the slot's initial value in domain.yml: no event sets it
_SLOT_RESETS = ("restart", "session_started")  # Rasa resets slots; carried-over ones are set again after


def _missed_turns(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The escalating turns of one conversation that set no ``escalation_id``, each with the
    conversation's language at that turn."""
    missed, user, crisis_kind, language = [], None, None, _INITIAL_LANGUAGE
    pending: dict[str, Any] | None = None
    for event in events:
        kind = event.get("event")
        if kind in _SLOT_RESETS:
            language = _INITIAL_LANGUAGE
        if kind == "slot" and event.get("name") == "crisis_kind":
            crisis_kind = event.get("value")
        if kind == "slot" and event.get("name") == LANGUAGE_SLOT:
            language = event.get("value") or _INITIAL_LANGUAGE
        if kind == "slot" and event.get("name") == "escalation_id" and event.get("value") is not None:
            pending = None
        if kind in ("user", "action") and pending is not None:
            missed.append(pending)
            pending = None
        if kind == "user":
            user = event
        elif kind == "action" and event.get("name") in ESCALATING_ACTIONS and user is not None:
            pending = {"action": event["name"], "user": user, "crisis_kind": crisis_kind, "language": language}
    if pending is not None:
        missed.append(pending)
    return missed


def _reason(turn: dict[str, Any]) -> str:
    if turn["action"] == "action_crisis_protocol":
        return "emergency" if turn["crisis_kind"] == "emergency" else "crisis"
    intent = ((turn["user"].get("parse_data") or {}).get("intent") or {}).get("name")
    return "asked_for_staff" if intent == "request_human" else "medical_question"


def _in_hand_off(events: list[dict[str, Any]]) -> bool:
    """The conversation's ``handoff`` slot as its latest event left it."""
    for event in reversed(events):
        if event.get("event") == "slot" and event.get("name") == HANDOFF_SLOT:
            return bool(event.get("value"))
    return False


def _has_open_escalation(conversation_id: str, database_url: str | None) -> bool:
    with session_scope(database_url) as session:
        return session.execute(
            select(Escalation.id).where(Escalation.conversation_id == conversation_id, Escalation.status == "open")
        ).first() is not None


def reconcile(
    tracker_url: str | None = None,
    database_url: str | None = None,
    days: int = 7,
    *,
    hold: Callable[[str], Delivery] | None = None,
) -> int:
    """Records every missed escalation of the last ``days`` days and holds those conversations for staff.

    Args:
        tracker_url: Rasa's tracker store (default ``TRACKER_STORE_URL``).
        database_url: the clinic database (default ``CLINIC_DATABASE_URL``).
        days: how far back to look.
        hold: puts a conversation into hand-off (default :func:`clinic.rasa_api.hold_for_staff`,
            Rasa at ``RASA_URL``).

    Returns:
        How many escalations were recorded.
    """
    hold = hold or hold_for_staff
    engine = get_engine(tracker_url or tracker_store_url())
    metadata = MetaData()
    try:
        events_table = Table("events", metadata, autoload_with=engine)
    except Exception:  # no conversation yet: the tracker store has not created its table
        return 0
    since = (utcnow() - timedelta(days=days)).timestamp()
    found: list[tuple[str, list[dict[str, Any]], bool]] = []  # sender, missed turns, in hand-off
    with engine.connect() as connection:
        senders = connection.execute(
            select(events_table.c.sender_id)
            .where(events_table.c.action_name.in_(ESCALATING_ACTIONS), events_table.c.timestamp >= since)
            .distinct()
        ).scalars().all()
        for sender in senders:
            rows = connection.execute(
                select(events_table.c.data).where(events_table.c.sender_id == sender).order_by(events_table.c.id)
            ).scalars()
            events = [json.loads(row) for row in rows]
            missed = [turn for turn in _missed_turns(events) if (turn["user"].get("timestamp") or since) >= since]
            if missed:
                found.append((sender, missed, _in_hand_off(events)))
    # the tracker store is left alone before Rasa is asked to write to it
    recorded = 0
    for sender, missed, in_hand_off in found:
        recorded += sum(_record(sender, turn, database_url) for turn in missed)
        if not in_hand_off and _has_open_escalation(sender, database_url):
            delivery = hold(sender)
            if not delivery.ok:
                logger.warning("reconciler could not put a conversation into hand-off (%s); retrying next round",
                               delivery.error)
    if recorded:
        logger.warning("reconciler recorded %s escalation(s) that a failed action call missed", recorded)
    return recorded


def _record(sender: str, turn: dict[str, Any], database_url: str | None) -> bool:
    """Records the turn's escalation unless its message is recorded already; whether it recorded it."""
    user = turn["user"]
    # Rasa sets a message id; a stable stand-in keeps older events idempotent too
    message_id = user.get("message_id") or f"ts-{user.get('timestamp')}"
    if is_recorded(sender, message_id, database_url):
        return False
    escalate(
        conversation_id=sender,
        channel=user.get("input_channel") or "unknown",
        reason=_reason(turn),
        message_id=message_id,
        text=user.get("text"),
        guard_reason=(user.get("parse_data") or {}).get("guard"),
        language=turn["language"],
        database_url=database_url,
    )
    return True

"""Metrics of conversations, read with SQL from Rasa's tracker store (the ``events`` table).

A *conversation* here is one patient's messages on one day in the clinic's time zone (a sender id
and a day): an SMS number or a widget visitor who comes back next week starts a new one. The
channel comes from the sender id: the SMS line's ids are E.164 numbers (``+1...``), the widget's
are random ids. A conversation *escalated* when one of :data:`ESCALATING_ACTIONS` ran in it that
day (staff were asked to look); the others were *contained*, answered without staff.

Only counts leave these queries: no message text, no sender id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clinic.insights._sql import EVENTS, days_table, has_events_table
from clinic.insights.period import Period

ESCALATING_ACTIONS = ("action_escalate_to_staff", "action_crisis_protocol", "action_safety_checkin")
CRISIS_ACTIONS = {"action_crisis_protocol": "crisis_protocol", "action_safety_checkin": "safety_checkin"}
BOOKING_ACTIONS = {
    "booking_form": "form_started",
    "action_submit_booking": "completed",
    "action_submit_reschedule": "reschedules",
    "action_submit_cancel": "cancellations",
}
BOOKING_INTENT = "book_consultation"
SMS_SENDER_PREFIX = "+"


@dataclass
class DayCounts:
    """One day's conversations."""

    web: int = 0
    sms: int = 0
    outside_hours: int = 0
    escalated: int = 0
    crisis_protocol: int = 0
    safety_checkin: int = 0

    @property
    def conversations(self) -> int:
        return self.web + self.sms

    @property
    def contained(self) -> int:
        return max(self.conversations - self.escalated, 0)


@dataclass
class ConversationMetrics:
    """What the tracker store tells about a period."""

    days: dict[str, DayCounts]
    faq_topics: list[tuple[str, int]] = field(default_factory=list)  # (intent, messages), most asked first
    booking: dict[str, int] = field(default_factory=dict)  # asked, form_started, completed, reschedules, cancellations


def _is_patient_message() -> sa.sql.ColumnElement:
    """User events written by patients (not the console's ``EXTERNAL_`` intents)."""
    return sa.and_(
        EVENTS.c.type_name == "user",
        sa.or_(EVENTS.c.intent_name.is_(None), EVENTS.c.intent_name.notlike("EXTERNAL%")),
    )


def _in_day(days: sa.sql.FromClause) -> sa.sql.ColumnElement:
    return sa.and_(EVENTS.c.timestamp >= days.c.lo, EVENTS.c.timestamp < days.c.hi)


def _conversations(connection: Connection, period: Period, result: dict[str, DayCounts]) -> None:
    days = days_table(period)
    per_sender = (
        sa.select(days.c.day, days.c.open_lo, days.c.open_hi, EVENTS.c.sender_id,
                  sa.func.min(EVENTS.c.timestamp).label("first_at"))
        .select_from(days.join(EVENTS, sa.and_(_is_patient_message(), _in_day(days))))
        .group_by(days.c.day, days.c.open_lo, days.c.open_hi, EVENTS.c.sender_id)
        .subquery("per_sender")
    )
    sms = per_sender.c.sender_id.like(SMS_SENDER_PREFIX + "%")
    outside = sa.or_(per_sender.c.first_at < per_sender.c.open_lo, per_sender.c.first_at >= per_sender.c.open_hi)
    query = (
        sa.select(per_sender.c.day,
                  sa.func.sum(sa.case((sms, 1), else_=0)),
                  sa.func.count(),
                  sa.func.sum(sa.case((outside, 1), else_=0)))
        .group_by(per_sender.c.day)
    )
    for day, sms_count, total, outside_count in connection.execute(query):
        counts = result[day]
        counts.sms, counts.web, counts.outside_hours = int(sms_count or 0), int(total - (sms_count or 0)), int(
            outside_count or 0)


def _actions_per_day(connection: Connection, period: Period, result: dict[str, DayCounts]) -> None:
    days = days_table(period)
    in_day = sa.and_(EVENTS.c.type_name == "action", _in_day(days))
    escalated = (
        sa.select(days.c.day, sa.func.count(EVENTS.c.sender_id.distinct()))
        .select_from(days.join(EVENTS, sa.and_(EVENTS.c.action_name.in_(ESCALATING_ACTIONS), in_day)))
        .group_by(days.c.day)
    )
    for day, count in connection.execute(escalated):
        result[day].escalated = int(count)
    crisis = (
        sa.select(days.c.day, EVENTS.c.action_name, sa.func.count())
        .select_from(days.join(EVENTS, sa.and_(EVENTS.c.action_name.in_(tuple(CRISIS_ACTIONS)), in_day)))
        .group_by(days.c.day, EVENTS.c.action_name)
    )
    for day, action, count in connection.execute(crisis):
        setattr(result[day], CRISIS_ACTIONS[action], int(count))


def _in_period(period: Period) -> sa.sql.ColumnElement:
    return sa.and_(EVENTS.c.timestamp >= period.start.timestamp(), EVENTS.c.timestamp < period.end.timestamp())


def faq_topics(
    connection: Connection, period: Period, intents: Iterable[str], limit: int = 16
) -> list[tuple[str, int]]:
    """Patient messages per FAQ intent, most asked first (ties by name).

    Only patient messages (``user`` events) have an ``intent_name``: no type filter is needed, and
    the intent index answers the query alone.
    """
    names = tuple(intents)
    if not names:
        return []
    count = sa.func.count().label("n")
    query = (
        sa.select(EVENTS.c.intent_name, count)
        .where(EVENTS.c.intent_name.in_(names), _in_period(period))
        .group_by(EVENTS.c.intent_name)
        .order_by(count.desc(), EVENTS.c.intent_name)
        .limit(limit)
    )
    return [(name, int(n)) for name, n in connection.execute(query)]


def booking_steps(connection: Connection, period: Period) -> dict[str, int]:
    """Patients (sender ids) who asked to book, started, completed the booking form; reschedules
    and cancellations the assistant completed (times)."""
    steps = dict.fromkeys(("asked", *BOOKING_ACTIONS.values()), 0)
    asked = sa.select(sa.func.count(EVENTS.c.sender_id.distinct())).where(
        EVENTS.c.intent_name == BOOKING_INTENT, _in_period(period))
    steps["asked"] = int(connection.execute(asked).scalar_one() or 0)
    query = (
        sa.select(EVENTS.c.action_name, sa.func.count(), sa.func.count(EVENTS.c.sender_id.distinct()))
        .where(EVENTS.c.action_name.in_(tuple(BOOKING_ACTIONS)), EVENTS.c.type_name == "action", _in_period(period))
        .group_by(EVENTS.c.action_name)
    )
    for action, times, patients in connection.execute(query):
        key = BOOKING_ACTIONS[action]
        steps[key] = int(times if key in ("reschedules", "cancellations") else patients)
    return steps


def conversation_metrics(connection: Connection, period: Period, faq_intents: Iterable[str]) -> ConversationMetrics:
    """Every tracker-store metric of the period (all zero before Rasa has created its table)."""
    result = {day.day.isoformat(): DayCounts() for day in period.days}
    metrics = ConversationMetrics(result)
    if not has_events_table(connection):
        metrics.booking = dict.fromkeys(("asked", *BOOKING_ACTIONS.values()), 0)
        return metrics
    _conversations(connection, period, result)
    _actions_per_day(connection, period, result)
    metrics.faq_topics = faq_topics(connection, period, faq_intents)
    metrics.booking = booking_steps(connection, period)
    return metrics

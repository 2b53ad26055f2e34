"""The insights report of a period: every aggregate, as plain data (no patient text).

The page, the JSON API (``GET /api/insights``) and the CSV export all show this one structure;
its keys are named after the charts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from clinic.db import get_engine, session_scope
from clinic.hours import is_open
from clinic.insights import conversations, escalations
from clinic.insights.escalations import REASONS, URGENCIES, EscalationTimes
from clinic.insights.intents import faq_intents, topic_label
from clinic.insights.period import Period
from clinic.insights.timing import BusinessClock, Promise, parse_promise, percentile, within
from clinic.profile import ClinicProfile
from clinic.settings import tracker_store_url

Report = dict[str, Any]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _conversation_part(metrics: conversations.ConversationMetrics) -> Report:
    per_day = [
        {"date": day, "web": c.web, "sms": c.sms, "conversations": c.conversations, "outside_hours": c.outside_hours}
        for day, c in metrics.days.items()
    ]
    web = sum(c.web for c in metrics.days.values())
    sms = sum(c.sms for c in metrics.days.values())
    outside = sum(c.outside_hours for c in metrics.days.values())
    return {"total": web + sms, "web": web, "sms": sms, "outside_hours": outside,
            "outside_hours_share": _share(outside, web + sms), "per_day": per_day}


def _containment_part(metrics: conversations.ConversationMetrics) -> Report:
    per_day = [
        {"date": day, "conversations": c.conversations, "contained": c.contained,
         "rate": _share(c.contained, c.conversations)}
        for day, c in metrics.days.items()
    ]
    total = sum(c.conversations for c in metrics.days.values())
    contained = sum(c.contained for c in metrics.days.values())
    return {"conversations": total, "contained": contained, "escalated": total - contained,
            "rate": _share(contained, total), "per_day": per_day}


def _crisis_part(metrics: conversations.ConversationMetrics) -> Report:
    days = metrics.days
    return {
        "crisis_protocol": sum(c.crisis_protocol for c in days.values()),
        "safety_checkin": sum(c.safety_checkin for c in days.values()),
        "per_day": [{"date": day, "crisis_protocol": c.crisis_protocol, "safety_checkin": c.safety_checkin}
                    for day, c in days.items()],
    }


def _escalation_part(rows: Sequence[EscalationTimes], period: Period) -> Report:
    per_day: dict[str, Counter[str]] = {day.day.isoformat(): Counter() for day in period.days}
    for row in rows:
        day = period.day_of(row.created_at)
        if day is not None:
            per_day[day.isoformat()][row.reason] += 1
    reasons = Counter(row.reason for row in rows)
    urgencies = Counter(row.urgency for row in rows)
    return {
        "total": len(rows),
        "by_reason": {reason: reasons.get(reason, 0) for reason in REASONS},
        "by_urgency": {urgency: urgencies.get(urgency, 0) for urgency in URGENCIES},
        "per_day": [{"date": day, **{reason: counts.get(reason, 0) for reason in REASONS}}
                    for day, counts in per_day.items()],
    }


def _waits(seconds: Sequence[float]) -> Report:
    p50, p90 = percentile(seconds, 0.5), percentile(seconds, 0.9)
    return {"count": len(seconds), "p50": round(p50, 1) if p50 is not None else None,
            "p90": round(p90, 1) if p90 is not None else None}


def _by_hours(rows: Sequence[EscalationTimes], profile: ClinicProfile) -> dict[str, list[EscalationTimes]]:
    """The escalations opened during and outside business hours."""
    groups: dict[str, list[EscalationTimes]] = {"during_hours": [], "outside_hours": []}
    for row in rows:
        groups["during_hours" if is_open(profile, row.created_at) else "outside_hours"].append(row)
    return groups


def _first_reply_part(rows: Sequence[EscalationTimes], groups: dict[str, list[EscalationTimes]],
                      profile: ClinicProfile, promise: Promise | None) -> Report:
    clock = BusinessClock(profile)

    def summary(group: Sequence[EscalationTimes]) -> Report:
        replied = [(row.created_at, row.first_reply_at) for row in group if row.first_reply_at is not None]
        result = _waits([(reply - opened).total_seconds() for opened, reply in replied])
        result["no_reply"] = len(group) - len(replied)
        if promise is None:
            return {**result, "within_promise": None, "within_promise_share": None}
        kept = sum(1 for opened, reply in replied if within(clock, promise, opened, reply))
        return {**result, "within_promise": kept, "within_promise_share": _share(kept, len(replied))}

    return {
        **summary(rows),
        "promise": promise.text if promise is not None else None,
        "promise_seconds": promise.seconds if promise is not None else None,
        "promise_in_business_hours": promise.business if promise is not None else None,
        **{name: summary(group) for name, group in groups.items()},
    }


def _resolution_part(rows: Sequence[EscalationTimes], groups: dict[str, list[EscalationTimes]]) -> Report:
    def seconds(group: Sequence[EscalationTimes]) -> list[float]:
        return [(row.resolved_at - row.created_at).total_seconds() for row in group if row.resolved_at is not None]

    return {**_waits(seconds(rows)), "unresolved": sum(1 for row in rows if row.resolved_at is None),
            **{name: _waits(seconds(group)) for name, group in groups.items()}}


def build_report(
    period: Period, profile: ClinicProfile, *, database_url: str | None = None, tracker_url: str | None = None
) -> Report:
    """Every aggregate of the insights for ``period`` (see the module doc).

    Args:
        period: the days to report on, in the clinic's time zone.
        profile: the clinic (opening hours, ``response_time``).
        database_url: the clinic database (default ``CLINIC_DATABASE_URL``).
        tracker_url: Rasa's tracker store (default ``TRACKER_STORE_URL``).
    """
    with get_engine(tracker_url or tracker_store_url()).connect() as connection:
        metrics = conversations.conversation_metrics(connection, period, faq_intents())
    with session_scope(database_url) as session:
        rows = escalations.escalation_times(session, period)
        failed = escalations.replies_not_delivered(session, period)
        outcomes = escalations.booking_outcomes(session, period)
    booking = metrics.booking
    by_hours = _by_hours(rows, profile)
    containment = _containment_part(metrics)
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "timezone": period.tz.key,
        "conversations": _conversation_part(metrics),
        "containment_rate": containment["rate"],
        "containment": containment,
        "faq_topics": [{"intent": intent, "topic": topic_label(intent), "count": count}
                       for intent, count in metrics.faq_topics],
        "booking_funnel": {"asked": booking["asked"], "form_started": booking["form_started"],
                           "completed": booking["completed"], "booked": outcomes["booked"],
                           "cancelled": outcomes["cancelled"]},
        "reschedules": booking["reschedules"],
        "cancellations": {"by_assistant": booking["cancellations"],
                          "bookings_cancelled": outcomes["bookings_cancelled"]},
        "escalations": _escalation_part(rows, period),
        "first_reply_seconds": _first_reply_part(rows, by_hours, profile, parse_promise(profile.response_time)),
        "resolution_seconds": _resolution_part(rows, by_hours),
        "replies_not_delivered": failed,
        "crisis_events": _crisis_part(metrics),
    }

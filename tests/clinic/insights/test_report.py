"""Every metric of the insights report on the hand-built day (scenario.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from clinic.insights.period import Period, make_period
from clinic.insights.report import build_report
from clinic.profile import ClinicProfile


@pytest.fixture
def report(scenario_db: str, period: Period, profile: ClinicProfile) -> dict[str, Any]:
    return build_report(period, profile, database_url=scenario_db, tracker_url=scenario_db)


def test_conversations_per_day_by_channel_and_outside_hours(report: dict[str, Any]) -> None:
    conversations = report["conversations"]
    assert conversations["per_day"] == [
        {"date": "2026-11-10", "web": 6, "sms": 1, "conversations": 7, "outside_hours": 1},
        {"date": "2026-11-11", "web": 0, "sms": 0, "conversations": 0, "outside_hours": 0},
    ]
    assert (conversations["total"], conversations["outside_hours_share"]) == (7, round(1 / 7, 4))


def test_containment_counts_conversations_that_ended_without_staff(report: dict[str, Any]) -> None:
    # escalated: the SMS hand-off, the crisis and the request for a person
    assert report["containment"]["per_day"][0] == {"date": "2026-11-10", "conversations": 7, "contained": 4,
                                                   "rate": round(4 / 7, 4)}
    assert report["containment_rate"] == round(4 / 7, 4)


def test_faq_topics_count_patient_questions(report: dict[str, Any]) -> None:
    assert {(t["intent"], t["count"]) for t in report["faq_topics"]} == {
        ("faq_cost_insurance", 1), ("faq_side_effects", 1), ("faq_conditions_treated", 1)}


def test_booking_funnel(report: dict[str, Any]) -> None:
    assert report["booking_funnel"] == {"asked": 1, "form_started": 1, "completed": 1, "booked": 1, "cancelled": 0}
    assert report["reschedules"] == 0


def test_escalations_by_reason_and_urgency(report: dict[str, Any]) -> None:
    escalations = report["escalations"]
    assert escalations["by_reason"] == {"medical_question": 1, "asked_for_staff": 1, "crisis": 1, "emergency": 0,
                                        "safety_checkin": 0}
    assert escalations["by_urgency"] == {"normal": 2, "urgent": 1}
    assert escalations["per_day"][0]["crisis"] == 1 and escalations["per_day"][1]["medical_question"] == 0


def test_time_to_first_staff_reply_against_the_business_hour_promise(report: dict[str, Any]) -> None:
    first = report["first_reply_seconds"]
    # the crisis: 5 min; the SMS at 20:00 answered at 08:30 next day: 12 h 30 min, 30 business minutes
    assert (first["count"], first["p50"], first["p90"]) == (2, (300 + 45000) / 2, 300 + 0.9 * 44700)
    assert (first["within_promise"], first["no_reply"], first["promise_seconds"]) == (2, 1, 3600)
    assert first["during_hours"]["p50"] == 300 and first["during_hours"]["no_reply"] == 1
    assert first["outside_hours"]["p50"] == 45000


def test_time_to_resolution(report: dict[str, Any]) -> None:
    resolution = report["resolution_seconds"]
    assert (resolution["count"], resolution["p50"], resolution["unresolved"]) == (2, (1800 + 46800) / 2, 1)


def test_replies_not_delivered(report: dict[str, Any]) -> None:
    assert report["replies_not_delivered"] == 1


def test_crisis_protocol_and_safety_checkins(report: dict[str, Any]) -> None:
    assert (report["crisis_events"]["crisis_protocol"], report["crisis_events"]["safety_checkin"]) == (1, 0)


def test_a_period_without_conversations_is_all_zero(scenario_db: str, profile: ClinicProfile) -> None:
    empty = build_report(make_period(date(2026, 12, 1), date(2026, 12, 3), profile), profile,
                         database_url=scenario_db, tracker_url=scenario_db)
    assert (empty["conversations"]["total"], empty["containment_rate"], empty["escalations"]["total"]) == (0, None, 0)
    assert empty["first_reply_seconds"]["p50"] is None


def test_the_report_holds_no_patient_text_or_ids(report: dict[str, Any]) -> None:
    text = repr(report)
    assert "lithium" not in text and "+15550100001" not in text and "web-faq" not in text

"""clinic.staff.escalation: one open escalation per conversation, upgrades, idempotency.

Every test gets a fresh database (``database_url``): SQLite, and PostgreSQL when reachable.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clinic.db import Escalation, EscalationMessage, session_scope
from clinic.staff.escalation import EscalationResult, escalate, is_recorded
from clinic.staff.inbox import list_escalations
from tests.clinic.staff import mark_resolved, stored_escalations


def _escalate(url: str, conversation: str, reason: str, message_id: str | None, **extra: Any) -> EscalationResult:
    return escalate(
        conversation_id=conversation,
        channel=extra.pop("channel", "rest"),
        reason=reason,
        message_id=message_id,
        text=extra.pop("text", f"message {message_id}"),
        database_url=url,
        **extra,
    )


def _messages(url: str, escalation_id: int) -> list[tuple[str, str]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(EscalationMessage.message_id, EscalationMessage.reason)
            .where(EscalationMessage.escalation_id == escalation_id)
            .order_by(EscalationMessage.id)
        )
        return [tuple(row) for row in rows]


def _escalation(url: str, escalation_id: int) -> Escalation:
    with session_scope(url) as session:
        return session.get(Escalation, escalation_id)


def test_a_first_message_opens_an_escalation(database_url: str) -> None:
    guard_reason = {"category": "medical", "rule": "named_medicine", "matched": ["lexapro"]}

    result = _escalate(database_url, "conv-1", "medical_question", "m1", channel="twilio", guard_reason=guard_reason)

    assert result.created and not result.upgraded and result.urgency == "normal"
    stored = _escalation(database_url, result.escalation_id)
    assert (stored.conversation_id, stored.channel, stored.reason, stored.status) == (
        "conv-1", "twilio", "medical_question", "open",
    )
    assert stored.trigger_message_id == "m1" and stored.trigger_text == "message m1"
    assert stored.guard_reason == guard_reason
    assert _messages(database_url, result.escalation_id) == [("m1", "medical_question")]


@pytest.mark.parametrize("reason", ["crisis", "emergency"])
def test_a_crisis_or_emergency_opens_urgent(database_url: str, reason: str) -> None:
    result = _escalate(database_url, "conv-1", reason, "m1")

    assert result.created and result.urgency == "urgent"


def test_a_second_message_attaches_to_the_open_escalation(database_url: str) -> None:
    first = _escalate(database_url, "conv-1", "asked_for_staff", "m1")

    second = _escalate(database_url, "conv-1", "medical_question", "m2")

    assert second.escalation_id == first.escalation_id
    assert not second.created
    assert _messages(database_url, first.escalation_id) == [("m1", "asked_for_staff"), ("m2", "medical_question")]
    assert _escalation(database_url, first.escalation_id).reason == "medical_question"  # the more serious reason
    assert len(list_escalations(database_url=database_url)) == 1


def test_a_crisis_upgrades_the_open_escalation_to_urgent(database_url: str) -> None:
    first = _escalate(database_url, "conv-1", "medical_question", "m1")

    crisis = _escalate(database_url, "conv-1", "crisis", "m2")
    later = _escalate(database_url, "conv-1", "asked_for_staff", "m3")

    assert crisis.escalation_id == first.escalation_id
    assert crisis.upgraded and crisis.urgency == "urgent"
    assert not later.upgraded and later.urgency == "urgent"  # never downgraded
    stored = _escalation(database_url, first.escalation_id)
    assert (stored.reason, stored.urgency) == ("crisis", "urgent")


def test_the_same_message_twice_is_recorded_once(database_url: str) -> None:
    first = _escalate(database_url, "conv-1", "crisis", "m1")

    retry = _escalate(database_url, "conv-1", "crisis", "m1")

    assert retry.escalation_id == first.escalation_id and not retry.created and not retry.upgraded
    assert _messages(database_url, first.escalation_id) == [("m1", "crisis")]
    assert is_recorded("conv-1", "m1", database_url=database_url)
    assert not is_recorded("conv-1", "m2", database_url=database_url)
    assert not is_recorded("conv-2", "m1", database_url=database_url)


def test_conversations_are_kept_apart(database_url: str) -> None:
    a = _escalate(database_url, "conv-a", "medical_question", "m1")
    b = _escalate(database_url, "conv-b", "medical_question", "m1")

    assert a.escalation_id != b.escalation_id
    assert a.created and b.created


def test_the_conversations_language_is_kept_and_follows_a_switch(database_url: str) -> None:
    _escalate(database_url, "conv-1", "asked_for_staff", "m1", language="en")
    _escalate(database_url, "conv-1", "medical_question", "m2", language="es")
    _escalate(database_url, "conv-1", "medical_question", "m3")  # language unknown: the last known stays

    [escalation] = stored_escalations(database_url=database_url)
    assert escalation.language == "es"


def test_a_language_the_assistant_does_not_speak_is_not_stored(database_url: str) -> None:
    _escalate(database_url, "conv-1", "asked_for_staff", "m1", language="<b>fr</b>")

    [escalation] = stored_escalations(database_url=database_url)
    assert escalation.language is None


def test_an_unknown_reason_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="unknown escalation reason"):
        _escalate(database_url, "conv-1", "bored", "m1")

    assert stored_escalations(status=None, database_url=database_url) == []


def test_a_message_after_resolving_opens_a_new_escalation(database_url: str) -> None:
    first = _escalate(database_url, "conv-1", "medical_question", "m1")
    mark_resolved(database_url, first.escalation_id)

    again = _escalate(database_url, "conv-1", "asked_for_staff", "m2")

    assert again.created and again.escalation_id != first.escalation_id
    assert [e.id for e in list_escalations(database_url=database_url)] == [again.escalation_id]


def test_listing_puts_urgent_first_then_oldest_first(database_url: str) -> None:
    normal_old = _escalate(database_url, "conv-1", "medical_question", "m1")
    urgent_old = _escalate(database_url, "conv-2", "crisis", "m1")
    normal_new = _escalate(database_url, "conv-3", "asked_for_staff", "m1")
    upgraded = _escalate(database_url, "conv-4", "medical_question", "m1")
    _escalate(database_url, "conv-4", "emergency", "m2")
    resolved = _escalate(database_url, "conv-5", "crisis", "m1")
    mark_resolved(database_url, resolved.escalation_id)

    listed = [e.id for e in list_escalations(database_url=database_url)]

    assert listed == [urgent_old.escalation_id, upgraded.escalation_id, normal_old.escalation_id,
                      normal_new.escalation_id]
    assert [e.id for e in list_escalations(status="resolved", database_url=database_url)] == [resolved.escalation_id]


def test_the_database_allows_one_open_escalation_per_conversation(database_url: str) -> None:
    _escalate(database_url, "conv-1", "medical_question", "m1")

    with pytest.raises(IntegrityError), session_scope(database_url) as session:
        session.add(Escalation(conversation_id="conv-1", channel="rest", reason="crisis", status="open"))


def test_simultaneous_messages_share_one_escalation(database_url: str) -> None:
    start = threading.Barrier(4)
    results: list[EscalationResult] = []
    errors: list[BaseException] = []

    def send(message_id: str) -> None:
        try:
            start.wait(timeout=10)
            results.append(_escalate(database_url, "conv-1", "crisis", message_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(f"m{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    assert len({r.escalation_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with session_scope(database_url) as session:
        open_count = session.execute(
            select(func.count()).select_from(Escalation).where(Escalation.status == "open")
        ).scalar_one()
        message_count = session.execute(select(func.count()).select_from(EscalationMessage)).scalar_one()
    assert (open_count, message_count) == (1, 4)

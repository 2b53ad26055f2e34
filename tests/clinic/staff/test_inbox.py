"""clinic.staff.inbox: listing, claiming, notes, replies (delivery recorded) and resolving (hand-back first).

Every test gets a fresh database (``database_url``): SQLite, and PostgreSQL when reachable.
Rasa (tracker store, HTTP API) and the notifier outbox are faked (tests/clinic/staff/console).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from clinic.channels.sms import record_opt_out
from clinic.clock import utcnow
from clinic.db import Escalation, StaffReply, session_scope
from clinic.staff import audit, inbox
from clinic.staff.accounts import StaffMember, create_user
from clinic.staff.escalation import escalate
from tests.clinic.staff.console import FakeRasa, install

PASSWORD = "correct horse battery staple"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRasa:
    return install(monkeypatch)


@pytest.fixture
def sam(database_url: str) -> StaffMember:
    return create_user("sam", PASSWORD, display_name="Sam Staff", database_url=database_url, hasher=CHEAP)


@pytest.fixture
def kim(database_url: str) -> StaffMember:
    return create_user("kim", PASSWORD, display_name="Kim Nurse", database_url=database_url, hasher=CHEAP)


def _open(url: str, conversation: str, reason: str = "medical_question", text: str = "can I take it with lexapro?",
          rule: str | None = "named_medicine") -> int:
    guard = {"category": "medical", "rule": rule} if rule else None
    return escalate(conversation_id=conversation, channel="rest", reason=reason, message_id="m1", text=text,
                    guard_reason=guard, database_url=url).escalation_id


def _age(url: str, escalation_id: int, minutes: int) -> None:
    with session_scope(url) as session:
        session.execute(
            update(Escalation).where(Escalation.id == escalation_id)
            .values(created_at=utcnow() - timedelta(minutes=minutes))
        )


def _actions(url: str, escalation_id: int | None = None) -> list[tuple[str, str | None, str | None]]:
    events = audit.list_events(url, escalation_id=escalation_id)
    return [(e.action, e.username, e.detail) for e in reversed(events)]


# ------------------------------------------------------------------ listing


def test_open_escalations_are_listed_urgent_first_then_oldest_first(database_url: str, sam: StaffMember) -> None:
    newer = _open(database_url, "conv-newer")
    older = _open(database_url, "conv-older")
    urgent = _open(database_url, "conv-urgent", "crisis", rule="self_harm")
    _age(database_url, newer, 5)
    _age(database_url, older, 30)
    _age(database_url, urgent, 1)

    rows = inbox.list_escalations(database_url=database_url)

    assert [r.id for r in rows] == [urgent, older, newer]
    assert (rows[0].urgency, rows[0].reason, rows[0].guard_rule, rows[0].channel) == (
        "urgent", "crisis", "self_harm", "rest",
    )
    assert rows[1].waiting_seconds() >= 30 * 60


@pytest.mark.parametrize(
    ("guard", "shown"),
    [
        ({"category": "crisis", "rule": "self_harm", "sentence": 1}, "self_harm (sentence 2)"),
        ({"category": "crisis", "rule": "risk_model", "sentence": None, "risk": {"crisis": 0.914, "emergency": 0.0}},
         "risk_model (risk 0.91)"),
        ({"category": None, "rule": None, "safety": "checkin", "risk": {"crisis": 0.2, "emergency": 0.31}},
         "safety_checkin (risk 0.31)"),
        ({"category": None, "rule": None}, None),
    ],
    ids=["lexicon-rule-in-a-sentence", "risk-model", "check-in", "nothing-fired"],
)
def test_staff_see_what_decided(database_url: str, guard: dict, shown: str | None) -> None:
    escalate(conversation_id="conv-why", channel="rest", reason="crisis", message_id="m1", text="...",
             guard_reason=guard, database_url=database_url)

    [row] = inbox.list_escalations(database_url=database_url)

    assert row.guard_rule == shown


def test_filters_mine_unassigned_and_resolved(database_url: str, sam: StaffMember, kim: StaffMember,
                                              fake: FakeRasa) -> None:
    mine = _open(database_url, "conv-mine")
    theirs = _open(database_url, "conv-theirs")
    free = _open(database_url, "conv-free")
    done = _open(database_url, "conv-done")
    inbox.claim(mine, sam, database_url=database_url)
    inbox.claim(theirs, kim, database_url=database_url)
    assert inbox.resolve(done, sam, database_url=database_url).ok

    def ids(**kw: object) -> list[int]:
        return [r.id for r in inbox.list_escalations(user=sam, database_url=database_url, **kw)]

    assert ids() == [mine, theirs, free]
    assert ids(filter="mine") == [mine]
    assert ids(filter="unassigned") == [free]
    assert ids(status="resolved") == [done]
    assert inbox.counts(sam, database_url=database_url) == {"all": 3, "mine": 1, "unassigned": 1}
    resolved = inbox.list_escalations(status="resolved", database_url=database_url)[0]
    assert resolved.resolved_by.username == "sam" and resolved.resolved_at is not None


@pytest.mark.parametrize("kwargs", [{"status": "closed"}, {"filter": "everything"}, {"filter": "mine"}])
def test_unknown_status_or_filter_is_refused(database_url: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        inbox.list_escalations(database_url=database_url, **kwargs)


def test_detail_has_messages_notes_and_replies(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")
    inbox.add_note(escalation_id, sam, "called her back", database_url=database_url)
    inbox.reply(escalation_id, sam, "A nurse will call you today.", database_url=database_url)

    detail = inbox.get_escalation(escalation_id, database_url=database_url)

    assert detail.trigger_text == "can I take it with lexapro?"
    assert [m.text for m in detail.messages] == ["can I take it with lexapro?"]
    assert [(n.text, n.author.username) for n in detail.notes] == [("called her back", "sam")]
    assert [(r.text, r.status) for r in detail.replies] == [("A nurse will call you today.", "delivered")]
    assert detail.summary.last_reply_at is not None


@pytest.mark.parametrize("escalation_id", [999, 0, -1, 2**31, 10**30])
def test_unknown_ids_are_not_found(database_url: str, sam: StaffMember, escalation_id: int) -> None:
    with pytest.raises(inbox.NotFound):
        inbox.get_escalation(escalation_id, database_url=database_url)
    with pytest.raises(inbox.NotFound):
        inbox.claim(escalation_id, sam, database_url=database_url)


def test_viewing_is_audited(database_url: str, sam: StaffMember) -> None:
    escalation_id = _open(database_url, "conv-1")

    inbox.view(escalation_id, sam, via="api", database_url=database_url)

    assert _actions(database_url, escalation_id) == [("view", "sam", "via api")]
    assert audit.list_events(database_url)[0].conversation_id == "conv-1"


# ------------------------------------------------------------------ claiming


def test_claim_and_unassign(database_url: str, sam: StaffMember) -> None:
    escalation_id = _open(database_url, "conv-1")

    claimed = inbox.claim(escalation_id, sam, database_url=database_url)
    again = inbox.claim(escalation_id, sam, database_url=database_url)
    released = inbox.unassign(escalation_id, sam, database_url=database_url)
    inbox.unassign(escalation_id, sam, database_url=database_url)

    assert claimed.assigned_to.username == "sam" and again.assigned_to.username == "sam"
    assert released.assigned_to is None
    assert _actions(database_url, escalation_id) == [
        ("claim", "sam", "via console"), ("unassign", "sam", "via console"),
    ]


def test_someone_elses_claim_needs_take_over(database_url: str, sam: StaffMember, kim: StaffMember) -> None:
    escalation_id = _open(database_url, "conv-1")
    inbox.claim(escalation_id, kim, database_url=database_url)

    with pytest.raises(inbox.Conflict, match="Kim Nurse") as conflict:
        inbox.claim(escalation_id, sam, database_url=database_url)
    taken = inbox.claim(escalation_id, sam, take_over=True, database_url=database_url)

    assert conflict.value.reason == "claimed"
    assert taken.assigned_to.username == "sam"
    assert _actions(database_url, escalation_id)[-1] == ("claim", "sam", "taken over from kim; via console")


@pytest.mark.parametrize("call", [inbox.claim, inbox.unassign], ids=["claim", "unassign"])
def test_a_resolved_escalation_cannot_be_claimed_or_unassigned(database_url: str, sam: StaffMember, fake: FakeRasa,
                                                               call: Callable[..., object]) -> None:
    escalation_id = _open(database_url, "conv-1")
    inbox.resolve(escalation_id, sam, database_url=database_url)

    with pytest.raises(inbox.Conflict) as conflict:
        call(escalation_id, sam, database_url=database_url)

    assert conflict.value.reason == "resolved"


def test_a_resolved_escalation_cannot_be_replied_to(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")
    inbox.resolve(escalation_id, sam, database_url=database_url)

    with pytest.raises(inbox.Conflict):
        inbox.reply(escalation_id, sam, "hello?", database_url=database_url)
    assert fake.sent == []


# ------------------------------------------------------------------ notes


def test_notes_are_kept_and_audited_without_their_text(database_url: str, sam: StaffMember) -> None:
    escalation_id = _open(database_url, "conv-1")

    note = inbox.add_note(escalation_id, sam, "  patient prefers a call after 5pm  ", database_url=database_url)

    assert note.text == "patient prefers a call after 5pm" and note.author.display_name == "Sam Staff"
    [(action, username, detail)] = _actions(database_url, escalation_id)
    assert (action, username) == ("note", "sam") and "5pm" not in detail


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("   \n ", "empty"), ("x" * 2001, "too long"), ("bad\x00byte", "control"), (None, "string")],
)
def test_invalid_note_and_reply_text_is_refused(
    database_url: str, sam: StaffMember, fake: FakeRasa, text: object, message: str
) -> None:
    escalation_id = _open(database_url, "conv-1")

    with pytest.raises(inbox.InvalidText, match=message):
        inbox.add_note(escalation_id, sam, text, database_url=database_url)
    with pytest.raises(inbox.InvalidText, match=message):
        inbox.reply(escalation_id, sam, text, database_url=database_url)
    assert fake.sent == [] and _actions(database_url, escalation_id) == []


def test_the_limit_is_exactly_2000_characters(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")

    assert len(inbox.reply(escalation_id, sam, "é" * 2000, database_url=database_url).text) == 2000


# ------------------------------------------------------------------ replies


def test_a_delivered_reply(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")

    result = inbox.reply(escalation_id, sam, "A nurse will call you within the hour.", database_url=database_url)

    assert (result.status, result.error, result.author.username) == ("delivered", None, "sam")
    assert result.delivered_at is not None
    assert fake.sent == [("conv-1", "A nurse will call you within the hour.", "Sam Staff")]
    assert fake.reply_database_urls == [database_url]  # where clinic.rasa_api reads the SMS opt-outs
    summary = inbox.get_escalation(escalation_id, database_url=database_url).summary
    assert summary.assigned_to.username == "sam"  # replying claims an unassigned escalation
    assert _actions(database_url, escalation_id) == [
        ("claim", "sam", "by replying; via console"),
        ("reply", "sam", f"reply {result.id} delivered; via console"),
    ]


def test_a_failed_reply_keeps_the_reason(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")
    fake.reply_error = "Rasa answered 500"

    result = inbox.reply(escalation_id, sam, "Hello", database_url=database_url)

    assert (result.status, result.error, result.delivered_at) == ("failed", "Rasa answered 500", None)
    assert _actions(database_url, escalation_id)[-1][2] == f"reply {result.id} failed: Rasa answered 500; via console"
    with session_scope(database_url) as session:
        assert session.execute(select(StaffReply.status)).scalar_one() == "failed"


def test_a_hand_off_module_that_raises_fails_the_reply_cleanly(
    database_url: str, sam: StaffMember, fake: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("boom")

    monkeypatch.setattr(inbox, "services", replace(inbox.services, send_staff_reply=broken))
    escalation_id = _open(database_url, "conv-1")

    result = inbox.reply(escalation_id, sam, "Hello", database_url=database_url)

    assert (result.status, result.error) == ("failed", "internal error (ConnectionError)")


def test_replying_keeps_someone_elses_claim(
    database_url: str, sam: StaffMember, kim: StaffMember, fake: FakeRasa
) -> None:
    escalation_id = _open(database_url, "conv-1")
    inbox.claim(escalation_id, kim, database_url=database_url)

    inbox.reply(escalation_id, sam, "Hello", database_url=database_url)

    assert inbox.get_escalation(escalation_id, database_url=database_url).summary.assigned_to.username == "kim"


def test_the_sms_opt_out_state_of_a_conversation(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    phone = "+13125550142"
    sms = escalate(conversation_id=phone, channel="twilio", reason="asked_for_staff", message_id="m1", text="hi",
                   guard_reason=None, database_url=database_url).escalation_id
    web = _open(database_url, "conv-web")
    summary = inbox.get_escalation(sms, database_url=database_url).summary

    assert inbox.sms_opted_out(summary, database_url=database_url) is False
    record_opt_out(phone, database_url=database_url)
    assert inbox.sms_opted_out(summary, database_url=database_url) is True
    assert inbox.sms_opted_out(inbox.get_escalation(web, database_url=database_url).summary,
                               database_url=database_url) is None

    def broken(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("database down")

    monkeypatch.setattr(inbox, "services", replace(inbox.services, is_opted_out=broken))
    assert inbox.sms_opted_out(summary, database_url=database_url) is None  # unknown
    assert "5550142" not in caplog.text


def test_patient_and_reply_text_never_reach_the_logs(
    database_url: str, sam: StaffMember, fake: FakeRasa, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    escalation_id = _open(database_url, "conv-1", text="my number is 555-0100 and I feel awful")
    fake.say("conv-1", "patient", "my number is 555-0100 and I feel awful")
    inbox.view(escalation_id, sam, database_url=database_url)
    inbox.transcript("conv-1")
    inbox.reply(escalation_id, sam, "Call us at 555-0199, Jane", database_url=database_url)
    inbox.add_note(escalation_id, sam, "Jane's husband answered", database_url=database_url)
    fake.reply_error = "timeout"
    inbox.reply(escalation_id, sam, "Call us at 555-0199, Jane", database_url=database_url)

    assert caplog.records
    assert not any(s in caplog.text for s in ("555-0100", "555-0199", "Jane", "awful"))


# ------------------------------------------------------------------ resolving


def test_resolving_hands_back_first(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")

    result = inbox.resolve(escalation_id, sam, via="api", database_url=database_url)

    assert result.ok and result.error is None and fake.handed_back == ["conv-1"]
    assert (result.escalation.status, result.escalation.resolved_by.username) == ("resolved", "sam")
    assert result.escalation.resolved_at is not None
    assert _actions(database_url, escalation_id) == [("resolve", "sam", "via api")]
    with pytest.raises(inbox.Conflict):
        inbox.resolve(escalation_id, sam, database_url=database_url)


def test_a_failed_hand_back_leaves_it_open_for_a_retry(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    escalation_id = _open(database_url, "conv-1")
    fake.hand_back_error = "Rasa unreachable"

    failed = inbox.resolve(escalation_id, sam, database_url=database_url)
    fake.hand_back_error = None
    retried = inbox.resolve(escalation_id, sam, database_url=database_url)

    assert (failed.ok, failed.error, failed.escalation.status) == (False, "Rasa unreachable", "open")
    assert retried.ok and retried.escalation.status == "resolved"
    assert [a for a, _u, _d in _actions(database_url, escalation_id)] == ["resolve_failed", "resolve"]


def test_an_unknown_escalation_is_not_handed_back(database_url: str, sam: StaffMember, fake: FakeRasa) -> None:
    with pytest.raises(inbox.NotFound):
        inbox.resolve(42, sam, database_url=database_url)
    assert fake.handed_back == []


# ------------------------------------------------------------------ what other modules provide


def test_the_transcript_comes_from_the_tracker_store(fake: FakeRasa) -> None:
    first = fake.say("conv-1", "patient", "hello")
    second = fake.say("conv-1", "bot", "hi, how can I help?")

    assert [e.text for e in inbox.transcript("conv-1").entries] == ["hello", "hi, how can I help?"]
    assert inbox.transcript("conv-1", after_id=first.id).entries == [second]


def test_an_unreadable_transcript_is_reported_not_raised(fake: FakeRasa) -> None:
    fake.transcript_error = OSError("database is locked")

    result = inbox.transcript("conv-1")

    assert result.entries == [] and "OSError" in result.error


def test_unreadable_notifications_give_empty_lists(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    def broken(*args: object, **kwargs: object) -> list[object]:
        raise OSError("database is locked")

    monkeypatch.setattr(inbox, "services", inbox.Services(list_notifications=broken, failing_notifications=broken))

    assert inbox.notifications_for(1, database_url=sqlite_url) == []
    assert inbox.failing_notifications(database_url=sqlite_url) == []


def test_the_real_interfaces_have_the_signatures_the_inbox_calls() -> None:
    """The fakes (tests/clinic/staff/console) are called as the inbox calls the real functions."""
    import dataclasses
    import inspect

    from clinic import rasa_api
    from clinic.staff import notifications, transcript

    def params(function: object) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(function).parameters)

    assert list(params(transcript.read_transcript))[:3] == ["conversation_id", "after_id", "tracker_url"]
    assert {f.name for f in dataclasses.fields(transcript.TranscriptEntry)} >= {"id", "at", "sender", "text",
                                                                                 "staff_name"}
    reply = params(rasa_api.send_staff_reply)
    assert list(reply)[:2] == ["conversation_id", "text"] and reply["staff_name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(params(rasa_api.hand_back))[0] == "conversation_id"
    assert {f.name for f in dataclasses.fields(rasa_api.Delivery)} >= {"ok", "error"}
    assert list(params(notifications.list_for_escalation))[:2] == ["escalation_id", "database_url"]
    assert "database_url" in params(notifications.failing)
    assert {f.name for f in dataclasses.fields(notifications.NotificationStatus)} >= {
        "notifier", "event", "status", "attempts", "last_error", "next_attempt_at", "sent_at",
    }

"""clinic.staff.notifications: the outbox (queued with the escalation), the dispatcher (real local
webhook, SMTP and Twilio servers), retries with backoff, statuses and configuration.

Outbox tests use ``database_url``: SQLite, and PostgreSQL when reachable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from clinic.db import Escalation, Notification, session_scope
from clinic.staff import notifications
from clinic.staff.escalation import EscalationResult, escalate
from clinic.staff.notifications import (
    MAX_ATTEMPTS,
    ConfigError,
    NotificationStatus,
    backoff,
    build_alert,
    configured_names,
    describe_error,
    dispatch_due,
    enqueue,
    failing,
    list_for_escalation,
    load_notifiers,
    run_dispatcher,
)
from tests.clinic.staff.notifiers.servers import (
    TWILIO_SID,
    TWILIO_TOKEN,
    HttpReceiver,
    SmtpServer,
    TwilioStub,
    clear_notifier_environment,
)

PATIENT_PHONE = "+15558675309"
PATIENT_TEXT = "I'm Jane Doe, I took all my pills, call me on +1 (555) 867-5309 or jane.doe@example.com"
PATIENT_DETAILS = ("Jane Doe", "pills", "867-5309", "5558675309", "jane.doe", PATIENT_PHONE)
ONCALL = "+15005550006"
STAFF_EMAIL = "oncall@clinic.test"
CONSOLE = "https://console.clinic.test"
WEBHOOK_PATH = "/services/T000/B000/s3cr3tT0ken"


@pytest.fixture(autouse=True)
def _no_notifier_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_notifier_environment(monkeypatch)


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpReceiver]:
    """A real webhook receiver, configured as the only notifier."""
    receiver = HttpReceiver().start()
    monkeypatch.setenv("STAFF_NOTIFIERS", "slack")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", receiver.url + WEBHOOK_PATH)
    yield receiver
    receiver.stop()


@pytest.fixture
def every_notifier(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpReceiver, SmtpServer, TwilioStub]]:
    """Webhook, SMTP and Twilio servers, all three configured."""
    receiver, twilio = HttpReceiver().start(), TwilioStub()
    twilio.start()
    with SmtpServer() as smtp:
        for name, value in {
            "STAFF_NOTIFIERS": "slack,email,sms",
            "SLACK_WEBHOOK_URL": receiver.url + WEBHOOK_PATH,
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
            "SMTP_FROM": "assistant@clinic.test", "STAFF_EMAIL_TO": STAFF_EMAIL,
            "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550001", "ONCALL_PHONE": ONCALL, "TWILIO_API_BASE": twilio.url,
        }.items():
            monkeypatch.setenv(name, value)
        yield receiver, smtp, twilio
    receiver.stop()
    twilio.stop()


def _escalate(url: str, reason: str, message_id: str = "m1", conversation: str = PATIENT_PHONE,
              channel: str = "twilio") -> EscalationResult:
    return escalate(conversation_id=conversation, channel=channel, reason=reason, message_id=message_id,
                    text=PATIENT_TEXT, database_url=url)


def _queued(url: str, escalation_id: int) -> list[tuple[str, str, str]]:
    return [(s.notifier, s.event, s.status) for s in list_for_escalation(escalation_id, database_url=url)]


def _urgent_flags(url: str) -> dict[tuple[int, str, str], bool]:
    with session_scope(url) as session:
        rows = session.execute(select(Notification.escalation_id, Notification.notifier, Notification.event,
                                      Notification.urgent))
        return {(e, n, ev): u for e, n, ev, u in rows}


def _soon() -> datetime:
    """A moment after everything queued so far is due."""
    return datetime.now(timezone.utc) + timedelta(seconds=1)


def _status(url: str, escalation_id: int, notifier: str = "slack") -> NotificationStatus:
    [status] = [s for s in list_for_escalation(escalation_id, database_url=url) if s.notifier == notifier]
    return status


# ------------------------------------------------------------------ the outbox


def test_opening_an_escalation_queues_one_notification_per_notifier(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", " slack, SMS ,slack")

    normal = _escalate(database_url, "medical_question", conversation="conv-1")
    crisis = _escalate(database_url, "crisis", conversation="conv-2")

    assert _queued(database_url, normal.escalation_id) == [("slack", "opened", "pending"), ("sms", "opened", "pending")]
    assert _queued(database_url, crisis.escalation_id) == [("slack", "opened", "pending"), ("sms", "opened", "pending")]
    flags = _urgent_flags(database_url)
    assert flags[(normal.escalation_id, "slack", "opened")] is False
    assert flags[(crisis.escalation_id, "sms", "opened")] is True


def test_an_upgrade_to_urgent_queues_urgent_notifications(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "slack,email")
    first = _escalate(database_url, "asked_for_staff", "m1")

    upgrade = _escalate(database_url, "emergency", "m2")
    _escalate(database_url, "crisis", "m3")  # already urgent: nothing new

    assert upgrade.upgraded
    assert _queued(database_url, first.escalation_id) == [
        ("slack", "opened", "pending"), ("email", "opened", "pending"),
        ("slack", "urgent", "pending"), ("email", "urgent", "pending"),
    ]
    assert _urgent_flags(database_url)[(first.escalation_id, "email", "urgent")] is True


def test_the_same_message_twice_queues_no_duplicates(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "slack,sms")
    first = _escalate(database_url, "crisis", "m1")

    retry = _escalate(database_url, "crisis", "m1")
    with session_scope(database_url) as session:  # enqueue itself is idempotent too
        added_again = enqueue(session, session.get(Escalation, first.escalation_id), "opened")

    assert retry.escalation_id == first.escalation_id and added_again == 0
    assert _queued(database_url, first.escalation_id) == [("slack", "opened", "pending"), ("sms", "opened", "pending")]


def test_without_notifiers_nothing_is_queued_but_the_escalation_is_recorded(database_url: str) -> None:
    result = _escalate(database_url, "crisis")

    assert result.created
    assert list_for_escalation(result.escalation_id, database_url=database_url) == []
    assert load_notifiers() == []


def test_an_unknown_notifier_never_blocks_recording_an_escalation(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "slack,pager")

    result = _escalate(database_url, "crisis")

    assert result.created
    assert _queued(database_url, result.escalation_id) == [("slack", "opened", "pending")]
    assert "unknown notifier(s) pager" in caplog.text
    with pytest.raises(ConfigError, match="unknown notifier.*'pager'"):
        load_notifiers()


def test_notifications_are_queued_in_the_escalations_transaction(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "slack")

    with pytest.raises(RuntimeError), session_scope(database_url) as session:
        escalation = Escalation(conversation_id="conv-1", channel="rest", reason="crisis", urgency="urgent")
        session.add(escalation)
        session.flush()
        assert enqueue(session, escalation, "opened") == 1
        raise RuntimeError("the escalation's transaction fails")

    with session_scope(database_url) as session:
        counts = [session.execute(select(func.count()).select_from(t)).scalar_one() for t in (Escalation, Notification)]
    assert counts == [0, 0]


# ------------------------------------------------------------------ sending


def test_every_notifier_is_sent_without_patient_details(
    database_url: str, every_notifier: tuple[HttpReceiver, SmtpServer, TwilioStub], caplog: pytest.LogCaptureFixture
) -> None:
    receiver, smtp, twilio = every_notifier
    caplog.set_level(logging.DEBUG)
    result = _escalate(database_url, "crisis")
    link = f"{CONSOLE}/escalations/{result.escalation_id}"

    sent = dispatch_due(database_url, now=_soon())

    assert sent == 3
    [webhook_text] = [r.json()["text"] for r in receiver.requests]
    [email] = [d.message for d in smtp.delivered]
    [sms] = [m["Body"] for m in twilio.messages()]
    expected = (f"URGENT: escalation #{result.escalation_id} (crisis, SMS) needs a staff member now - "
                f"open the staff console: {link}")
    assert webhook_text == sms == expected
    assert email["Subject"] == f"URGENT: escalation #{result.escalation_id} (crisis, SMS)"
    assert expected in email.get_content()
    everything_sent = " ".join([
        *(r.body.decode() for r in receiver.requests), *(d.raw.decode() for d in smtp.delivered),
        *(json.dumps(r.form()) for r in twilio.requests),
    ])
    for detail in PATIENT_DETAILS:
        assert detail not in everything_sent
    statuses = list_for_escalation(result.escalation_id, database_url=database_url)
    assert [(s.notifier, s.status, s.attempts) for s in statuses] == [("slack", "sent", 0), ("email", "sent", 0),
                                                                      ("sms", "sent", 0)]
    assert all(s.sent_at is not None and s.sent_at.tzinfo is not None for s in statuses)
    assert dispatch_due(database_url, now=_soon() + timedelta(hours=1)) == 0  # never sent twice
    logged = " ".join(r.getMessage() for r in caplog.records  # ours and Twilio's (not the test SMTP server's)
                      if r.levelno >= logging.INFO and r.name.startswith(("clinic", "twilio")))
    for detail in (*PATIENT_DETAILS, ONCALL, STAFF_EMAIL, "s3cr3t"):
        assert detail not in logged
    assert f"sent: escalation {result.escalation_id}, opened via sms" in logged


def test_every_notifier_says_the_conversations_language_without_its_text(
    database_url: str, every_notifier: tuple[HttpReceiver, SmtpServer, TwilioStub]
) -> None:
    receiver, smtp, twilio = every_notifier
    spanish_text = "Soy Jane Doe, me tomé todas las pastillas, llámame al +1 (555) 867-5309"
    result = escalate(conversation_id=PATIENT_PHONE, channel="twilio", reason="crisis", message_id="m1",
                      text=spanish_text, language="es", database_url=database_url)

    assert dispatch_due(database_url, now=_soon()) == 3

    expected = (f"URGENT: escalation #{result.escalation_id} (crisis, SMS) needs a staff member now - "
                f"Language: Spanish - open the staff console: {CONSOLE}/escalations/{result.escalation_id}")
    [webhook_text] = [r.json()["text"] for r in receiver.requests]
    [sms] = [m["Body"] for m in twilio.messages()]
    [email] = [d.message for d in smtp.delivered]
    assert webhook_text == sms == expected
    assert expected in email.get_content()
    everything_sent = " ".join([
        *(r.body.decode() for r in receiver.requests), *(d.raw.decode() for d in smtp.delivered),
        *(json.dumps(r.form()) for r in twilio.requests),
    ])
    for detail in (*PATIENT_DETAILS, "pastillas", "llámame", "tomé"):
        assert detail not in everything_sent


def test_an_escalation_recorded_before_languages_were_kept_says_none() -> None:
    alert = build_alert(13, "opened", False, "medical_question", "rest", None)

    assert "Language" not in alert.text and "Language" not in alert.subject


def test_urgent_notifications_are_sent_first(database_url: str, webhook: HttpReceiver) -> None:
    older_normal = _escalate(database_url, "medical_question", conversation="conv-1", channel="rest")
    newer_urgent = _escalate(database_url, "emergency", conversation="conv-2", channel="socketio")

    assert dispatch_due(database_url, now=_soon()) == 2

    assert [r.json()["text"] for r in webhook.requests] == [
        f"URGENT: escalation #{newer_urgent.escalation_id} (emergency, web chat) needs a staff member now - "
        f"open the staff console: {CONSOLE}/escalations/{newer_urgent.escalation_id}",
        f"New escalation #{older_normal.escalation_id} (medical question, web chat) waiting - "
        f"open the staff console: {CONSOLE}/escalations/{older_normal.escalation_id}",
    ]


def test_an_upgrade_says_the_escalation_became_urgent(database_url: str, webhook: HttpReceiver) -> None:
    first = _escalate(database_url, "asked_for_staff", "m1", channel="rest")
    dispatch_due(database_url, now=_soon())

    _escalate(database_url, "crisis", "m2", channel="rest")
    assert dispatch_due(database_url, now=_soon()) == 1

    assert webhook.requests[-1].json()["text"] == (
        f"URGENT: escalation #{first.escalation_id} (crisis, web chat) became urgent and needs a staff member "
        f"now - open the staff console: {CONSOLE}/escalations/{first.escalation_id}"
    )


def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(
    database_url: str, webhook: HttpReceiver
) -> None:
    result = _escalate(database_url, "crisis")
    webhook.answer(500, "internal error")
    start = _soon()

    assert dispatch_due(database_url, now=start) == 0

    status = _status(database_url, result.escalation_id)
    assert (status.status, status.attempts) == ("pending", 1)
    assert status.last_error == "NotifierError: webhook answered HTTP 500"
    assert status.next_attempt_at == start + timedelta(seconds=15)
    assert failing(database_url) == [status]

    webhook.answer(200, "ok")
    assert dispatch_due(database_url, now=start + timedelta(seconds=14)) == 0  # not due yet
    assert len(webhook.requests) == 1
    assert dispatch_due(database_url, now=start + timedelta(seconds=15)) == 1

    status = _status(database_url, result.escalation_id)
    assert (status.status, status.attempts, len(webhook.requests)) == ("sent", 1, 2)
    assert failing(database_url) == []


def test_a_webhook_that_is_down_gets_the_alert_when_it_is_back(database_url: str, webhook: HttpReceiver) -> None:
    result = _escalate(database_url, "medical_question")
    webhook.stop()
    start = _soon()

    dispatch_due(database_url, now=start)
    dispatch_due(database_url, now=start + timedelta(seconds=15))

    status = _status(database_url, result.escalation_id)
    assert (status.status, status.attempts) == ("pending", 2)
    assert status.last_error.startswith("NotifierError: webhook unreachable (ConnectionRefusedError")
    assert "s3cr3t" not in status.last_error
    assert status.next_attempt_at == start + timedelta(seconds=15 + 30)

    webhook.start()
    assert dispatch_due(database_url, now=start + timedelta(seconds=45)) == 1
    assert _status(database_url, result.escalation_id).status == "sent"
    assert len(webhook.requests) == 1


def test_after_max_attempts_a_notification_has_failed(database_url: str, webhook: HttpReceiver) -> None:
    result = _escalate(database_url, "crisis")
    webhook.answer(503, "unavailable")
    moment, waits = _soon(), []

    for _ in range(MAX_ATTEMPTS):
        dispatch_due(database_url, now=moment)
        status = _status(database_url, result.escalation_id)
        if status.next_attempt_at is not None:
            waits.append(int((status.next_attempt_at - moment).total_seconds()))
            moment = status.next_attempt_at

    assert waits == [15, 30, 60, 120, 240, 480, 900, 900, 900, 900, 900]
    assert (status.status, status.attempts, status.next_attempt_at) == ("failed", MAX_ATTEMPTS, None)
    assert status.last_error == "NotifierError: webhook answered HTTP 503"
    assert failing(database_url) == [status]
    webhook.answer(200, "ok")
    assert dispatch_due(database_url, now=moment + timedelta(days=1)) == 0  # given up: not sent any more
    assert len(webhook.requests) == MAX_ATTEMPTS


def test_a_twilio_error_is_retried(
    database_url: str, every_notifier: tuple[HttpReceiver, SmtpServer, TwilioStub], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, twilio = every_notifier
    monkeypatch.setenv("STAFF_NOTIFIERS", "sms")
    result = _escalate(database_url, "crisis")
    twilio.fail_with = (400, 21211, f"The 'To' number {ONCALL} is not a valid phone number.")
    start = _soon()

    assert dispatch_due(database_url, now=start) == 0

    status = _status(database_url, result.escalation_id, "sms")
    assert status.last_error == "NotifierError: Twilio answered HTTP 400, Twilio error 21211"
    twilio.fail_with = None
    assert dispatch_due(database_url, now=start + timedelta(seconds=15)) == 1
    assert _status(database_url, result.escalation_id, "sms").status == "sent"
    assert len(twilio.messages()) == 2  # the refused request and the accepted one


def test_a_notifier_no_longer_configured_shows_as_failing(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "sms")
    result = _escalate(database_url, "crisis")

    assert dispatch_due(database_url, now=_soon(), notifiers=[]) == 0

    [status] = failing(database_url)
    assert (status.escalation_id, status.notifier, status.attempts) == (result.escalation_id, "sms", 1)
    assert status.last_error == "ConfigError: notifier 'sms' is not configured (STAFF_NOTIFIERS)"


def test_two_dispatchers_never_send_a_notification_twice(database_url: str, webhook: HttpReceiver) -> None:
    ids = {_escalate(database_url, "crisis", conversation=f"conv-{i}").escalation_id for i in range(6)}
    webhook.delay = 0.1
    moment, start = _soon(), threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            start.wait(timeout=10)
            counts.append(dispatch_due(database_url, now=moment))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors and sum(counts) == 6
    texts = [r.json()["text"] for r in webhook.requests]
    assert sorted(texts) == sorted(set(texts)) and len(texts) == 6
    assert {int(t.split("#")[1].split(" ")[0]) for t in texts} == ids


# ------------------------------------------------------------------ the dispatcher loop


def _wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_the_dispatcher_loop_survives_an_error(
    database_url: str, webhook: HttpReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_dispatch, calls = notifications.dispatch_due, []

    def flaky_dispatch(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database unreachable")
        return real_dispatch(*args, **kwargs)

    monkeypatch.setattr(notifications, "dispatch_due", flaky_dispatch)
    _escalate(database_url, "crisis")
    stop = threading.Event()
    loop = threading.Thread(target=run_dispatcher, args=(stop,), kwargs={"interval": 0.05,
                                                                         "database_url": database_url})
    loop.start()
    try:
        delivered = _wait_for(lambda: len(webhook.requests) == 1)
    finally:
        stop.set()
        loop.join(timeout=15)

    assert delivered and not loop.is_alive()
    assert "notification dispatch failed" in caplog.text and "RuntimeError: database unreachable" in caplog.text


def test_the_dispatcher_warns_once_when_no_notifier_is_configured(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    loop = threading.Thread(target=run_dispatcher, args=(stop,), kwargs={"interval": 0.01, "database_url": sqlite_url})
    loop.start()
    time.sleep(0.2)
    stop.set()
    loop.join(timeout=15)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "no staff notifier configured (STAFF_NOTIFIERS is empty): staff only see escalations in the staff console"
    ]


def test_the_dispatcher_refuses_to_start_with_a_broken_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "email")

    with pytest.raises(ConfigError, match="SMTP_HOST, SMTP_FROM, STAFF_EMAIL_TO are not set"):
        run_dispatcher(threading.Event())


# ------------------------------------------------------------------ configuration and helpers


def test_configuration_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_NOTIFIERS", "slack,email,sms")

    with pytest.raises(ConfigError, match="STAFF_NOTIFIERS includes 'slack' but SLACK_WEBHOOK_URL is not set"):
        load_notifiers()
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example.test/services/x")
    monkeypatch.setenv("SMTP_HOST", "smtp.example.test")
    monkeypatch.setenv("SMTP_FROM", "assistant@clinic.test")
    with pytest.raises(ConfigError, match="'email' but STAFF_EMAIL_TO is not set"):
        load_notifiers()
    monkeypatch.setenv("STAFF_EMAIL_TO", STAFF_EMAIL)
    with pytest.raises(ConfigError, match="'sms' but TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER, "
                                          "ONCALL_PHONE are not set"):
        load_notifiers()
    for name, value in {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
                        "TWILIO_FROM_NUMBER": "+15005550001", "ONCALL_PHONE": ONCALL}.items():
        monkeypatch.setenv(name, value)
    assert [n.name for n in load_notifiers()] == ["slack", "email", "sms"]


@pytest.mark.parametrize(("value", "names"), [("", ()), (" , ", ()), ("SMS, slack,sms", ("sms", "slack"))])
def test_staff_notifiers_is_a_comma_list(value: str, names: tuple[str, ...]) -> None:
    assert configured_names({"STAFF_NOTIFIERS": value}) == names


def test_backoff_doubles_from_15_seconds_up_to_15_minutes() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [15, 30, 60, 120, 240, 480, 900, 900, 900]
    assert backoff(100) == timedelta(minutes=15)


def test_errors_are_stored_without_urls_contacts_or_length() -> None:
    error = RuntimeError("POST https://hooks.slack.com/services/T1/B2/s3cr3t failed for +1 (555) 867-5309 and "
                         "jane.doe@example.com " + "x" * 1000)

    described = describe_error(error)

    assert described.startswith("RuntimeError: POST <url> failed for <number> and <email> xxx")
    assert len(described) <= 300
    for secret in ("s3cr3t", "hooks.slack.com", "867", "jane.doe"):
        assert secret not in described


def test_a_normal_alert_reads_well() -> None:
    alert = build_alert(13, "opened", False, "medical_question", "rest")

    assert alert.subject == "New escalation #13 (medical question, web chat)"
    assert alert.text == ("New escalation #13 (medical question, web chat) waiting - "
                          f"open the staff console: {CONSOLE}/escalations/13")

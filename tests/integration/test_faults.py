"""Faults on the real assistant: the action server killed mid-conversation, the database restarted.

``test_action_server_down.py`` covers a crisis as the first message with the action server never
started. Here it is killed (SIGKILL) in the middle of a booking, and the patient keeps writing:
every message gets an answer that is safe (the crisis resources inside the form, a "please call
us" message when the clinic team could not be reached), and the escalations made meanwhile are
recorded once it is back, once each.

The database restart runs on PostgreSQL (the clinic database and Rasa's tracker store in a fresh
schema): while several patients write, every connection of this assistant to the database is
terminated (``pg_terminate_backend``), once and then repeatedly for a few seconds (the database
"down"). Service resumes, and nothing acknowledged is lost: every message that got an answer is
in the tracker store exactly once, and every escalation the patient was told about is in the
clinic database. Only connections carrying this test's ``application_name`` are terminated, so
other users of the same server are not disturbed. It needs PostgreSQL: skipped when unreachable,
failed under ``CI=true`` (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from clinic.db import get_engine, migrate
from clinic.launcher import Stack, wait_until_up
from clinic.staff.reconcile import reconcile
from clinic.staff.transcript import read_transcript
from tests.clinic.staff import stored_escalations
from tests.integration.conftest import free_port

TIMEOUT = 60.0
RESOURCES = ("988", "741741", "911")
CALL_US = "Please call us at"  # utter_escalation_failed: the safe message when an action cannot run
PASSED_ON = "I've passed it on"  # utter_escalated_medical: the patient is told staff have it
ALERTING = "alerting a member of our clinical team"  # utter_crisis_staff_alerted


def _say(port: int, sender: str, message: str) -> list[str]:
    response = httpx.post(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                          json={"sender": sender, "message": message}, timeout=TIMEOUT)
    response.raise_for_status()
    return [m.get("text") or "" for m in response.json()]


def _log_text(log_dir: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(log_dir.glob("*.log")))


# ------------------------------------------------------------------ action server killed


@pytest.fixture
def logged_stack(model: str, stack_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    running = Stack(model, free_port(), free_port(), env=stack_env, log_dir=tmp_path / "logs")
    yield running
    running.stop()


def test_action_server_killed_mid_conversation(logged_stack: Stack, stack_env: dict[str, str], tmp_path: Path) -> None:
    stack, db, tracker = logged_stack, stack_env["CLINIC_DATABASE_URL"], stack_env["TRACKER_STORE_URL"]
    stack.start()
    [actions] = [p for p in stack.processes if "actions" in p.args]
    booking, asking = f"rest-{uuid.uuid4().hex[:10]}", f"rest-{uuid.uuid4().hex[:10]}"
    port = stack.rasa_port

    assert "full name" in " ".join(_say(port, booking, "I'd like to book a consultation"))
    assert "mobile number" in " ".join(_say(port, booking, "Maria Quenby"))

    actions.send_signal(signal.SIGKILL)  # the action server dies in the middle of the booking
    actions.wait(timeout=10)

    # The answer cannot be checked: the patient is told to call, and asked again (nothing unchecked kept).
    answer = " ".join(_say(port, booking, "312-555-0187"))
    assert CALL_US in answer and "911" in answer and "mobile number" in answer
    # A medical question inside the form: the team could not be reached, so the patient is told to call.
    medical = " ".join(_say(port, booking, "I'm on lithium since the quillon episode, is ketamine safe for me?"))
    assert CALL_US in medical and "911" in medical and PASSED_ON not in medical
    # A crisis inside the form: the crisis resources from the domain, at once.
    crisis = " ".join(_say(port, booking, "honestly i just want to kill myself after the quillon episode"))
    assert all(number in crisis for number in RESOURCES) and CALL_US in crisis
    # Another patient's medical question gets the same safe answer; FAQ answers do not need the server.
    assert CALL_US in " ".join(_say(port, asking, "I take sertraline and have bipolar, is ketamine right for me?"))
    assert "$" in " ".join(_say(port, asking, "how much does an infusion cost?"))
    assert stored_escalations(status=None, database_url=db) == []

    stack.start_actions()  # back
    assert wait_until_up(f"http://127.0.0.1:{stack.action_port}/health", TIMEOUT, [stack.processes[-1]])

    assert reconcile(tracker, db) == 3  # the booking patient's two escalating turns, the other's one
    assert reconcile(tracker, db) == 0
    escalations = {e.conversation_id: e for e in stored_escalations(status=None, database_url=db)}
    assert set(escalations) == {booking, asking}
    assert (escalations[booking].reason, escalations[booking].urgency) == ("crisis", "urgent")
    assert [m.reason for m in escalations[booking].messages] == ["medical_question", "crisis"]
    assert escalations[asking].reason == "medical_question"
    # The unchecked answer was not kept: the phone number is asked again, not stored.
    slots = httpx.get(f"http://127.0.0.1:{port}/conversations/{booking}/tracker", timeout=TIMEOUT).json()["slots"]
    assert slots["phone"] is None and slots["patient_name"] == "Maria Quenby"

    # Service is back: a new medical question is recorded by the action itself.
    third = f"rest-{uuid.uuid4().hex[:10]}"
    assert PASSED_ON in " ".join(_say(port, third, "my doctor put me on lamotrigine, can I still get ketamine?"))
    assert reconcile(tracker, db) == 0
    assert third in {e.conversation_id for e in stored_escalations(database_url=db)}

    stack.stop()
    logs = _log_text(tmp_path / "logs").lower()
    assert "could not run" in logs  # the failure is logged...
    for secret in ("quillon", "quenby", "555-0187", "5550187", "sertraline", "lamotrigine"):
        assert secret not in logs, f"{secret!r} is in the logs"  # ...without the patient's words


# ------------------------------------------------------------------ database restarted


@dataclass
class Turn:
    sender: str
    message: str
    replies: list[str] | None  # None: the request failed (not acknowledged); [] while staff hold it
    sent: float = 0.0  # time.monotonic() when sent and answered
    answered: float = 0.0


@pytest.fixture
def postgres_stack(model: str, postgres_server_url: str, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, str, str]]:
    """The assistant on a fresh PostgreSQL schema (clinic database and tracker store), whose
    connections are marked with a unique ``application_name``; yields (stack, url, that name)."""
    schema = f"fault_test_{uuid.uuid4().hex[:12]}"
    application = f"clinic-fault-{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, future=True)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_server_url).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": application}).render_as_string(hide_password=False)
    env = {"CLINIC_VAR_DIR": str(tmp_path), "CLINIC_DATABASE_URL": url, "TRACKER_STORE_URL": url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    stack = Stack(model, free_port(), free_port(), env=env, log_dir=tmp_path / "logs")
    try:
        migrate(url)
        stack.start()
        yield stack, url, application
    finally:
        stack.stop()
        get_engine(url).dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _terminate(admin: Engine, application: str) -> int:
    """Terminates every connection of this assistant (and only those); returns how many."""
    with admin.begin() as connection:
        return connection.execute(text(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity "
            "where application_name = :application and pid <> pg_backend_pid()"), {"application": application}
        ).scalar_one()


# Each patient's messages; "#n" makes every message unique (the NLU ignores it).
SCRIPTS = {
    "faq": ["how much is an infusion?", "do you take insurance?", "where are you located?",
            "what are your hours?", "how long does an infusion take?", "is there parking?"],
    "medical": ["I'm on lithium, is ketamine safe for me?", "also what about my blood pressure pills",
                "are you still there?", "hello?", "ok thanks", "I'll wait"],
    "crisis": ["what is ketamine?", "honestly i just want to kill myself", "i can't do this anymore",
               "are you there?", "ok", "thanks"],
    "faq2": ["does ketamine help with depression?", "what are the side effects?", "how fast does it work?",
             "can I pay with HSA?", "do I need a referral?", "what should I bring?"],
}


@pytest.mark.postgres
def test_database_restarted_during_traffic(postgres_stack: tuple[Stack, str, str], postgres_server_url: str) -> None:
    stack, url, application = postgres_stack
    senders = {kind: f"rest-{kind}-{uuid.uuid4().hex[:8]}" for kind in SCRIPTS}
    turns: list[Turn] = []
    started, stop = threading.Event(), threading.Event()

    def traffic() -> None:  # round after round until told to stop (at most 2 minutes)
        deadline = time.monotonic() + 120
        round_ = 0
        while not stop.is_set() and time.monotonic() < deadline:
            for kind, sender in senders.items():
                message = f"{SCRIPTS[kind][round_ % len(SCRIPTS[kind])]} #{round_}"
                sent = time.monotonic()
                try:
                    replies: list[str] | None = _say(stack.rasa_port, sender, message)
                except httpx.HTTPError:
                    replies = None
                turns.append(Turn(sender, message, replies, sent, time.monotonic()))
            round_ += 1
            if round_ == 2:
                started.set()

    admin = create_engine(postgres_server_url, future=True, pool_size=1)
    sender_thread = threading.Thread(target=traffic, daemon=True)
    sender_thread.start()
    try:
        assert started.wait(TIMEOUT), "no traffic"
        assert _terminate(admin, application) > 0  # a restart: every connection dropped at once
        time.sleep(0.5)
        terminated, window_start = 0, time.monotonic()
        down_until = window_start + 3.0  # then "down" for 3 s: every connection dropped as soon as seen
        while time.monotonic() < down_until:
            terminated += _terminate(admin, application)
            time.sleep(0.01)
        # traffic goes on after the restart (once the requests held up by it are through)
        deadline = time.monotonic() + TIMEOUT
        while not any(t.sent > down_until for t in turns) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
    finally:
        stop.set()
        admin.dispose()
        sender_thread.join(timeout=TIMEOUT + 10)
    assert not sender_thread.is_alive()
    # the fault hit the traffic: connections were dropped while messages were being handled
    assert terminated > 0 and any(t.sent < down_until and t.answered > window_start for t in turns)
    assert any(t.sent > down_until for t in turns)

    # Service resumes, with each conversation's state: FAQs answered, conversations held by staff quiet.
    after = {kind: _say(stack.rasa_port, sender, "how much is an infusion?") for kind, sender in senders.items()}
    assert any("$" in r for r in after["faq"]) and any("$" in r for r in after["faq2"])
    assert after["medical"] == [] and after["crisis"] == []  # the hand-off survived the restart

    # Nothing acknowledged is lost: every message the server took (and answered, or held for staff)
    # is in the tracker store exactly once; FAQ questions all got their answer.
    stored = {sender: [e.text for e in read_transcript(sender, tracker_url=url) if e.sender == "patient"]
              for sender in senders.values()}
    acknowledged = [t for t in turns if t.replies is not None]
    assert len(acknowledged) >= len(turns) - 2, [t for t in turns if t.replies is None]
    missing = [(t.sender, t.message) for t in acknowledged if stored[t.sender].count(t.message) != 1]
    assert not missing, f"acknowledged but not stored (or stored twice): {missing}"
    unanswered = [t.message for t in acknowledged if t.sender in (senders["faq"], senders["faq2"]) and not t.replies]
    assert not unanswered, f"FAQ questions answered with silence: {unanswered}"

    # Escalations the patient was told about are in the clinic database (the reconciler records any
    # an interrupted action call missed, as `make run` does every 30 s).
    reconcile(url, url)
    escalations = {e.conversation_id: e for e in stored_escalations(status=None, database_url=url)}
    told = [t for t in acknowledged if any(PASSED_ON in r or ALERTING in r for r in t.replies or [])]
    assert {t.sender for t in told} == {senders["medical"], senders["crisis"]}
    for turn in told:
        assert turn.message in [m.text for m in escalations[turn.sender].messages], turn
    assert escalations[senders["crisis"]].urgency == "urgent"

    stack.stop()
    logs = _log_text(Path(os.environ["CLINIC_VAR_DIR"]) / "logs").lower()
    for words in ("kill myself", "blood pressure pills", "lithium"):
        assert words not in logs, f"{words!r} is in the logs"

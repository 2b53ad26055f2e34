"""Logs never hold patient data: a full conversation through every server, then a scan of all logs.

The real assistant runs as `make run` runs it (Rasa, action server, staff console, web server) at
the default log level (INFO), each server writing to its own log file. A patient with a unique
name, phone number and email books over REST, asks a personal medical question and writes a
crisis message on the web chat, and texts the SMS line from the same number; staff reply, note
and resolve through the console's API. Afterwards no log file, and no INFO-or-above record of the
code run in this process, contains any of those details or message texts (the phone number is
looked for in every common format). The logs are checked to be non-trivial first, so an empty or
silenced log cannot pass.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from twilio.request_validator import RequestValidator

from clinic.booking import service as booking
from clinic.launcher import Stack
from clinic.staff.accounts import create_api_token, create_user
from clinic.staff.reconcile import reconcile
from clinic.staff.transcript import read_transcript
from tests.clinic.staff import stored_escalations
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub
from tests.integration.conftest import PUBLIC_SMS_URL, SMS_LINE, free_port, sms_env, started_stack, wait_for
from tests.integration.patient import SocketPatient

TIMEOUT = 60


class Patient:
    """The details this patient gives, and every form they may take in a log line."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        # a fixed, made-up name (random letters can spell "nah" and end the booking)
        self.first, self.last = "Zebulon", "Quillfeather"
        self.name = f"{self.first} {self.last}"
        # 555-01XX numbers are reserved for fiction; a random one keeps parallel runs apart
        self.line = f"01{random.randint(10, 99)}"
        self.area, self.exchange = "312", "555"
        self.phone = f"{self.area}-{self.exchange}-{self.line}"
        self.e164 = f"+1{self.area}{self.exchange}{self.line}"
        self.email = f"zq.{tag}@example.com"
        # nonce words in every message: none of them occurs in any lexicon, answer or log format
        self.medical = (f"This is {self.first}, I'm on lithium since the xylofrond {tag} incident, "
                        "is ketamine safe for me?")
        self.crisis = f"honestly i just want to kill myself at the marmalade quarry {tag} tonight"
        self.handoff_message = f"my pharmacist called it the periwinkle {tag} interaction"
        self.sms = f"hi it's {self.first}, i take lamictal and the gingerbread {tag} pills, is ketamine safe for me?"
        self.staff_reply = f"Hi {self.first}, Nurse Dana here about the tangerine {tag} question."
        self.staff_note = f"Patient mentioned the ocelot {tag} story; call back."

    def needles(self) -> dict[str, str]:
        """What must not appear in any log (searched case-insensitively)."""
        a, x, n = self.area, self.exchange, self.line
        return {
            "full name": self.name, "last name": self.last, "first name": self.first,
            "phone": self.phone, "phone digits": f"{a}{x}{n}", "phone E.164": self.e164,
            "phone national": f"({a}) {x}-{n}", "phone spaced": f"{a} {x} {n}", "phone dotted": f"{a}.{x}.{n}",
            "phone local": f"{x}-{n}", "phone URL-encoded": f"%2B1{a}{x}{n}",
            "email": self.email, "email local part": self.email.split("@")[0],
            "medical question": "xylofrond", "crisis message": "marmalade quarry",
            "message while with staff": "periwinkle", "SMS message": "gingerbread",
            "staff reply": "tangerine", "staff note": "ocelot",
        }


class RestPatient:
    def __init__(self, rasa_port: int) -> None:
        self.url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
        self.sender = f"rest-{uuid.uuid4().hex[:12]}"
        self.last: list[dict[str, Any]] = []

    def say(self, text: str) -> str:
        response = httpx.post(self.url, json={"sender": self.sender, "message": text}, timeout=TIMEOUT)
        response.raise_for_status()
        self.last = response.json()
        return " ".join(m.get("text") or "" for m in self.last)

    @property
    def buttons(self) -> list[dict[str, str]]:
        return [b for m in self.last for b in m.get("buttons") or []]


def _text_the_line(stack: Stack, number: str, body: str, sid: str) -> httpx.Response:
    fields = {"From": number, "To": SMS_LINE, "Body": body, "MessageSid": sid, "AccountSid": TWILIO_SID,
              "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_SMS_URL, fields)
    return httpx.post(f"http://127.0.0.1:{stack.rasa_port}/webhooks/twilio/webhook", data=fields,
                      headers={"X-Twilio-Signature": signature}, timeout=TIMEOUT)


@pytest.fixture
def logged_stack(model: str, twilio: TwilioStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The whole assistant at the default log level, each server logging to <tmp>/logs/<server>.log."""
    for name in ("LOG_LEVEL", "LOG_LEVEL_LIBRARIES", "LOG_LEVEL_RASA_SDK", "DEBUG"):
        monkeypatch.delenv(name, raising=False)
    env = sms_env(tmp_path, twilio)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with started_stack(model, env, staff_port=free_port(), web_port=free_port(), log_dir=tmp_path / "logs") as stack:
        yield stack


def _record_text(record: logging.LogRecord) -> str:
    return logging.Formatter("%(levelname)s %(name)s %(message)s").format(record)


def test_a_full_conversation_leaves_no_patient_data_in_any_log(
    logged_stack: Stack, twilio: TwilioStub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stack, patient = logged_stack, Patient()
    db = stack.env["CLINIC_DATABASE_URL"]
    create_user("dana", "correct horse battery staple", display_name="Dana Nurse", database_url=db,
                hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    token = create_api_token("dana", "hygiene test", database_url=db).token
    console = httpx.Client(base_url=f"http://127.0.0.1:{stack.staff_port}", timeout=TIMEOUT,
                           headers={"Authorization": f"Bearer {token}"})

    # 1. A booking over REST with the patient's name, phone and email.
    rest = RestPatient(stack.rasa_port)
    assert "full name" in rest.say("I'd like to book a consultation")
    assert "mobile number" in rest.say(patient.name)
    assert "email" in rest.say(patient.phone)
    assert "help with" in rest.say(patient.email)
    assert "first visit" in rest.say("anxiety")
    assert "reminders" in rest.say("yes")
    assert "When would you like to come in" in rest.say("yes")
    rest.say("next Tuesday at 10am")
    assert len(rest.buttons) >= 2, rest.last
    assert "Please check your booking" in rest.say(rest.buttons[0]["payload"])
    assert "You're booked" in rest.say("yes")
    [made] = booking.list_bookings(database_url=db)
    assert (made.full_name, made.phone, made.email) == (patient.name, patient.e164, patient.email)

    # 2. On the web chat: a personal medical question, a message while with staff, a crisis.
    web = SocketPatient(stack.rasa_port, session_id=secrets.token_urlsafe(32))
    try:
        web.say(patient.medical)
        assert "clinical team" in " ".join(web.replies(wait=TIMEOUT))
        web.say(patient.handoff_message)
        web.replies(wait=4)
        web.say(patient.crisis)
        crisis = " ".join(web.replies(wait=TIMEOUT))
        assert "988" in crisis and "911" in crisis

        # 3. Staff work the escalation through the console's API: read, claim, reply, note, resolve.
        [escalation] = [e for e in stored_escalations(database_url=db) if e.conversation_id == web.session_id]
        assert escalation.urgency == "urgent"
        assert patient.medical in [m.text for m in escalation.messages]  # stored for staff, not logged
        detail = console.get(f"/api/escalations/{escalation.id}")
        assert detail.status_code == 200 and patient.crisis in detail.text
        assert console.post(f"/api/escalations/{escalation.id}/claim", json={}).status_code == 200
        sent = console.post(f"/api/escalations/{escalation.id}/reply", json={"text": patient.staff_reply})
        assert sent.status_code == 201, sent.text
        assert patient.staff_reply in web.replies(wait=TIMEOUT)
        note = console.post(f"/api/escalations/{escalation.id}/notes", json={"text": patient.staff_note})
        assert note.status_code == 201
        assert console.post(f"/api/escalations/{escalation.id}/resolve", json={}).status_code == 200
        assert "virtual assistant" in " ".join(web.replies(wait=TIMEOUT))

        # the widget's history after a reload (the web server reads the tracker store)
        history = httpx.post(f"http://127.0.0.1:{stack.web_port}/api/history",
                             json={"session_id": web.session_id}, timeout=TIMEOUT)
        assert history.status_code == 200 and patient.staff_reply in history.text
    finally:
        web.close()

    # 4. The same patient texts the SMS line: an escalating question, answered by SMS.
    assert _text_the_line(stack, patient.e164, patient.sms, f"SM{secrets.token_hex(16)}").status_code == 200
    assert wait_for(lambda: [m for m in twilio.messages() if m["To"] == patient.e164], timeout=TIMEOUT)
    assert wait_for(lambda: any(e.conversation_id == patient.e164 for e in stored_escalations(database_url=db)),
                    timeout=20)
    # (the SMS line answers Twilio at once and handles the message in the background: wait for its turn)
    assert wait_for(lambda: [e.text for e in read_transcript(patient.e164, tracker_url=stack.env["TRACKER_STORE_URL"])
                             if e.sender == "patient"] == [patient.sms], timeout=20)
    assert reconcile(stack.env["TRACKER_STORE_URL"], db) == 0  # every escalation was recorded by its action
    console.close()
    time.sleep(1.0)  # the servers' last lines
    stack.stop()

    logs = {path.name: path.read_text(encoding="utf-8", errors="replace")
            for path in sorted((tmp_path / "logs").glob("*.log"))}
    in_process = "\n".join(_record_text(r) for r in caplog.records if r.levelno >= logging.INFO)

    # The logs are there and at INFO: each server wrote its usual lines.
    assert set(logs) == {"rasa.log", "actions.log", "console.log", "web.log"}
    assert "INFO" in logs["rasa.log"] and "Starting Rasa server" in logs["rasa.log"], logs["rasa.log"][-2000:]
    assert re.search(r"escalation \d+ opened", logs["actions.log"]), logs["actions.log"][-2000:]
    assert re.search(r"booking \d+ made", logs["actions.log"])
    assert "audit: reply by dana" in logs["console.log"] and "POST /api/history" in logs["web.log"]

    leaks = [
        f"{what} ({needle!r}) in {source}: ...{text[max(0, i - 120):i + 120]!r}..."
        for source, text in [*logs.items(), ("records of this test process", in_process)]
        for what, needle in patient.needles().items()
        if (i := text.lower().find(needle.lower())) >= 0
    ]
    assert not leaks, "patient data in the logs:\n" + "\n".join(leaks)

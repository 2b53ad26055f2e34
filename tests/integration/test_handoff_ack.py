"""No silence while staff hold a conversation: the real assistant acknowledges an SMS patient's
message during a hand-off, once, with the clinic's next opening, and records it in the tracker.

The whole assistant runs with the SMS line configured against a local stand-in for Twilio's
Messages API (as in test_channel_ids.py); the clinic's profile is open only on one weekday, three
days from now, so the message is written outside business hours with a known next opening.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml
from twilio.request_validator import RequestValidator

from clinic.launcher import Stack
from clinic.profile import DEFAULT_PATH, WEEKDAYS
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub
from tests.integration.conftest import PUBLIC_SMS_URL, SMS_LINE, sms_env, started_stack, wait_for

TIMEOUT = 60
MEDICAL = "i'm on lithium and lamictal, is ketamine safe for me?"
ACK = "Your message is with our team"
CLINIC_TZ = ZoneInfo("America/Chicago")
OPEN_DAY = (datetime.now(CLINIC_TZ) + timedelta(days=3)).date()


@pytest.fixture(scope="module")
def stack(model: str, twilio: TwilioStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var = tmp_path_factory.mktemp("handoff-ack")
    profile = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    profile["timezone"] = "America/Chicago"
    profile["hours"] = {day: "closed" for day in WEEKDAYS} | {WEEKDAYS[OPEN_DAY.weekday()]: "08:00-09:00"}
    clinic_yml = Path(var) / "clinic.yml"
    clinic_yml.write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    env = sms_env(var, twilio, CLINIC_PROFILE=str(clinic_yml), HANDOFF_ACK_HOURS="4")
    with started_stack(model, env, quiet=True) as running:
        yield running


def _text_the_line(stack: Stack, phone: str, body: str) -> None:
    fields = {"From": phone, "To": SMS_LINE, "Body": body, "MessageSid": f"SM{secrets.token_hex(16)}",
              "AccountSid": TWILIO_SID, "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_SMS_URL, fields)
    response = httpx.post(f"http://127.0.0.1:{stack.rasa_port}/webhooks/twilio/webhook", data=fields,
                          headers={"X-Twilio-Signature": signature}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


def _tracker(stack: Stack, conversation_id: str) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{stack.rasa_port}/conversations/{conversation_id}/tracker",
                         timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def _texts_to(twilio: TwilioStub, phone: str) -> list[str]:
    return [m["Body"] for m in twilio.messages() if m["To"] == phone]


def test_texting_twice_during_a_hand_off_after_hours_gets_exactly_one_acknowledgement(
        stack: Stack, twilio: TwilioStub) -> None:
    phone = f"+1312555{random.randint(100, 199):04d}"  # 555-01XX: reserved for fiction
    _text_the_line(stack, phone, MEDICAL)
    assert wait_for(lambda: _tracker(stack, phone)["slots"].get("handoff") is True, timeout=TIMEOUT)
    before = len(_texts_to(twilio, phone))

    _text_the_line(stack, phone, "hello?")
    assert wait_for(lambda: any(ACK in body for body in _texts_to(twilio, phone)[before:]), timeout=TIMEOUT)
    _text_the_line(stack, phone, "is anyone there?")
    assert wait_for(lambda: _tracker(stack, phone)["events"][-1]["event"] == "action"
                    and sum(e["event"] == "user" for e in _tracker(stack, phone)["events"]) >= 3, timeout=TIMEOUT)
    time.sleep(2)  # a second acknowledgement, if one were sent, has time to arrive

    acks = [body for body in _texts_to(twilio, phone)[before:] if ACK in body]
    opening = f"{OPEN_DAY:%A} at 8 AM" if (OPEN_DAY - datetime.now(CLINIC_TZ).date()).days > 1 else "8 AM"
    assert len(acks) == 1, acks
    assert "during business hours, next from" in acks[0] and opening in acks[0] and "988" in acks[0]
    events = _tracker(stack, phone)["events"]
    assert [e["name"] for e in events if e["event"] == "action"].count("utter_handoff_ack") == 1
    assert sum(ACK in (e.get("text") or "") for e in events if e["event"] == "bot") == 1

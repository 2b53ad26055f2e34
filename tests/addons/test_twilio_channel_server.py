"""The SMS line through the real Rasa server (trained model, action server, clinic database).

Twilio's side is played by a local Messages API (no network): incoming messages are posted to
Rasa's ``/webhooks/twilio/webhook`` signed with the test auth token for the public URL
configured in ``TWILIO_WEBHOOK_URL`` (as behind a proxy), and outgoing SMS are read from the stub.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from twilio.request_validator import RequestValidator

from clinic.channels import sms
from clinic.channels.sms import SmsTexts
from clinic.launcher import Stack
from clinic.rasa_api import hand_back, send_staff_reply
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub
from tests.integration import conftest as integration
from tests.integration.conftest import PUBLIC_SMS_URL, SMS_LINE, sms_env, started_stack

# the integration tests' fixtures, for pytest to find here: the trained model and the Twilio stand-in
model, twilio = integration.model, integration.twilio


@pytest.fixture(scope="module")
def sms_stack(model: str, twilio: TwilioStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with started_stack(model, sms_env(tmp_path_factory.mktemp("sms"), twilio), quiet=True) as running:
        yield running


class Phone:
    """A patient's phone: texts the clinic through Rasa's webhook, reads what the stub received."""

    def __init__(self, stack: Stack, twilio: TwilioStub, number: str) -> None:
        self.stack, self.twilio, self.number = stack, twilio, number
        self.webhook = f"http://127.0.0.1:{stack.rasa_port}/webhooks/twilio/webhook"
        self.seen = 0
        self.sids = 0

    def text(self, body: str, *, sign_for: str | None = PUBLIC_SMS_URL, signature: str | None = None,
             **extra: str) -> requests.Response:
        self.sids += 1
        fields = {"From": self.number, "To": SMS_LINE, "Body": body, "MessageSid": f"SM{self.number[1:]}{self.sids}",
                  "AccountSid": TWILIO_SID, "NumMedia": "0", **extra}
        headers = {}
        if sign_for:
            signature = signature or RequestValidator(TWILIO_TOKEN).compute_signature(sign_for, fields)
            headers["X-Twilio-Signature"] = signature
        return requests.post(self.webhook, data=fields, headers=headers, timeout=30)

    def all_received(self) -> list[str]:
        return [m["Body"] for m in self.twilio.messages() if m["To"] == self.number]

    def received(self, wait: float = 15.0, quiet_for: float = 1.5) -> list[str]:
        """New SMS to this phone, once nothing more arrives for ``quiet_for`` s."""
        deadline = time.monotonic() + wait
        count, last_change = len(self.all_received()), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = len(self.all_received())
            if now != count:
                count, last_change = now, time.monotonic()
            elif now > self.seen and time.monotonic() - last_change >= quiet_for:
                break
        new = self.all_received()[self.seen:]
        self.seen += len(new)
        return new

    def tracker_events(self) -> list[dict]:
        response = requests.get(f"http://127.0.0.1:{self.stack.rasa_port}/conversations/{self.number}/tracker",
                                timeout=10)
        return [e for e in response.json()["events"] or [] if e["event"] == "user"]


@pytest.fixture
def texts() -> SmsTexts:
    return SmsTexts()


def api(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.rasa_port}"


def test_a_signed_question_gets_the_sms_answer_and_the_first_contact_note(sms_stack: Stack, twilio: TwilioStub,
                                                                          texts: SmsTexts) -> None:
    phone = Phone(sms_stack, twilio, "+15005550101")

    response = phone.text("how much is an infusion?")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    answer = phone.received()
    assert any("$450" in part for part in answer)
    assert all(len(part) <= sms.SMS_LIMIT for part in answer)
    assert texts.get("privacy_note") in "\n".join(answer)

    phone.text("do you take insurance?")
    later = phone.received()
    assert later and texts.get("privacy_note") not in "\n".join(later)  # only on first contact


@pytest.mark.parametrize("case", ["unsigned", "forged", "replayed to another URL"])
def test_unsigned_forged_or_replayed_requests_are_refused(sms_stack: Stack, twilio: TwilioStub, case: str) -> None:
    phone = Phone(sms_stack, twilio, f"+1500555020{['unsigned', 'forged', 'replayed to another URL'].index(case)}")
    kwargs = {"unsigned": {"sign_for": None},
              "forged": {"signature": RequestValidator("not-the-token").compute_signature(PUBLIC_SMS_URL, {})},
              "replayed to another URL": {"sign_for": phone.webhook}}[case]

    response = phone.text("STOP", **kwargs)

    assert response.status_code == 403
    assert phone.received(wait=2) == [] and phone.tracker_events() == []
    assert not sms.is_opted_out(phone.number, sms_stack.env["CLINIC_DATABASE_URL"])


def test_a_request_without_body_gets_400(sms_stack: Stack, twilio: TwilioStub) -> None:
    phone = Phone(sms_stack, twilio, "+15005550301")
    fields = {"From": phone.number, "To": SMS_LINE}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_SMS_URL, fields)

    response = requests.post(phone.webhook, data=fields, headers={"X-Twilio-Signature": signature}, timeout=10)

    assert response.status_code == 400 and phone.tracker_events() == []


def test_help_stop_and_start(sms_stack: Stack, twilio: TwilioStub, texts: SmsTexts) -> None:
    phone = Phone(sms_stack, twilio, "+15005550401")
    database = sms_stack.env["CLINIC_DATABASE_URL"]

    phone.text("HELP")
    [help_text] = phone.received()
    assert help_text.startswith(texts.get("help"))

    phone.text("stop")
    assert phone.received() == [texts.get("opted_out")]
    assert sms.is_opted_out(phone.number, database)

    phone.text("how much is an infusion?")  # reaches the assistant, but nothing is sent
    assert phone.received(wait=4) == []

    phone.text("START")
    assert phone.received() == [texts.get("opted_in")]
    phone.text("how much is an infusion?")
    assert any("$450" in part for part in phone.received())


def test_staff_replies_reach_the_phone_until_it_opts_out(sms_stack: Stack, twilio: TwilioStub,
                                                         texts: SmsTexts) -> None:
    phone = Phone(sms_stack, twilio, "+15005550501")
    database = sms_stack.env["CLINIC_DATABASE_URL"]
    phone.text("i'm on lithium, is ketamine safe for me?")
    assert any("911" in part for part in phone.received())

    delivered = send_staff_reply(phone.number, "Hi, this is Dana, a nurse at the clinic.", staff_name="Dana",
                                 base_url=api(sms_stack), database_url=database)
    assert delivered.ok, delivered.error
    assert phone.received() == ["Hi, this is Dana, a nurse at the clinic."]

    phone.text("STOP")
    assert phone.received() == [texts.get("opted_out")]
    refused = send_staff_reply(phone.number, "Are you still there?", staff_name="Dana", base_url=api(sms_stack),
                               database_url=database)
    assert not refused.ok and "opted out" in refused.error and "START" in refused.error
    assert phone.received(wait=3) == []

    # Handing back still changes the state; the patient is not texted.
    assert hand_back(phone.number, base_url=api(sms_stack)).ok
    assert phone.received(wait=3) == []


def test_hand_back_is_texted_with_the_sms_variant(sms_stack: Stack, twilio: TwilioStub) -> None:
    phone = Phone(sms_stack, twilio, "+15005550601")
    phone.text("can i talk to a real person please")
    assert phone.received()

    assert hand_back(phone.number, base_url=api(sms_stack)).ok

    [back] = phone.received()
    assert "assistant" in back and len(back) <= sms.SMS_LIMIT


def test_buttons_are_numbered_and_a_number_answers_them(sms_stack: Stack, twilio: TwilioStub) -> None:
    phone = Phone(sms_stack, twilio, "+15005550701")
    phone.text("hello")
    phone.received()
    event = {"event": "bot", "text": "What would you like to do?",
             "data": {"buttons": [{"title": "Talk to a person", "payload": "/request_human"},
                                  {"title": "Book a consultation", "payload": "/book_consultation"}]}}
    pushed = requests.post(f"{api(sms_stack)}/conversations/{phone.number}/tracker/events",
                           params={"output_channel": "latest", "execute_side_effects": "true"}, json=event, timeout=10)
    assert pushed.status_code == 200

    assert phone.received() == ["What would you like to do?\nReply with a number:\n1. Talk to a person\n"
                                "2. Book a consultation"]

    phone.text("2")
    booking = " ".join(phone.received())
    assert "consultation" in booking and "full name" in booking
    assert phone.tracker_events()[-1]["text"] == "/book_consultation"

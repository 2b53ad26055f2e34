"""addons.twilio_channel: the SMS line's webhook and output, without Rasa's server.

Requests are signed with the test auth token like Twilio signs them; outgoing SMS go to a
recording transport. The whole line through the real Rasa server: tests/integration/test_sms_line.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic.request import RequestParameters
from twilio.request_validator import RequestValidator

from addons.twilio_channel import ClinicTwilioInput, ClinicTwilioOutput
from clinic.channels import sms
from clinic.channels.sms import SmsDispatcher, SmsLineSettings, SmsTexts

TOKEN = "test-auth-token-0123456789"
URL = "https://clinic.example/webhooks/twilio/webhook"
PHONE = "+15005550006"
BUTTONS = [{"title": "Talk to a person", "payload": "/request_human"},
           {"title": "Book a consultation", "payload": "/book_consultation"}]


class Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, body: str) -> None:
        self.sent.append((to, body))


@dataclass
class Agent:
    """What the connector uses of Rasa's agent: its tracker store."""

    tracker_store: InMemoryTrackerStore = field(default_factory=lambda: InMemoryTrackerStore(Domain.empty()))


@dataclass
class Line:
    channel: ClinicTwilioInput
    transport: Transport
    agent: Agent
    received: list[UserMessage]
    reply: str | None = "Our answer."

    @property
    def bodies(self) -> list[str]:
        return [body for _, body in self.transport.sent]

    def post(self, fields: dict[str, str], *, sign_for: str | None = URL, signature: str | None = None,
             url: str = URL) -> tuple[int, str]:
        """Posts the form as Twilio would (signed for ``sign_for``), waits for the SMS sent."""
        form = RequestParameters({key: [value] for key, value in fields.items()})
        if signature is None and sign_for is not None:
            signature = RequestValidator(TOKEN).compute_signature(sign_for, form)

        async def run() -> tuple[int, str]:
            result = await self.channel.handle(form, url=url, signature=signature,
                                               on_new_message=self._assistant, agent=self.agent)
            await self.channel.dispatcher.drain()
            return result

        return asyncio.run(run())

    async def _assistant(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.reply:
            await message.output_channel.send_text_message(message.sender_id, self.reply)


@pytest.fixture
def line(sqlite_url: str) -> Line:
    transport = Transport()
    settings = SmsLineSettings(account_sid="AC" + "0" * 32, auth_token=TOKEN, number="+15550104201", webhook_url=URL)
    dispatcher = SmsDispatcher(transport, retry_delays=(), database_url=sqlite_url)
    channel = ClinicTwilioInput(settings, texts=SmsTexts(), dispatcher=dispatcher, database_url=sqlite_url)
    return Line(channel, transport, Agent(), [])


def texts() -> SmsTexts:
    return SmsTexts()


# ------------------------------------------------------------------ signature and required fields


def test_a_signed_message_reaches_the_assistant_and_its_answer_is_texted_back(line: Line) -> None:
    status, body = line.post({"From": PHONE, "Body": "how much is it?", "MessageSid": "SM1"})

    assert status == 200 and "<Response>" in body
    [message] = line.received
    assert (message.text, message.sender_id, message.input_channel) == ("how much is it?", PHONE, "twilio")
    assert line.transport.sent[0][0] == PHONE and line.bodies[0].startswith("Our answer.")


@pytest.mark.parametrize("case", ["unsigned", "forged", "other url", "other token"])
def test_an_unsigned_or_wrongly_signed_request_gets_403_and_nothing_happens(line: Line, sqlite_url: str,
                                                                            case: str) -> None:
    fields = {"From": PHONE, "Body": "STOP"}
    kwargs: dict[str, Any] = {
        "unsigned": {"sign_for": None},
        "forged": {"signature": "bm90IGEgc2lnbmF0dXJl"},
        "other url": {"sign_for": "https://attacker.example/webhooks/twilio/webhook"},
        "other token": {"signature": RequestValidator("another-token").compute_signature(URL, fields)},
    }[case]

    status, _ = line.post(fields, **kwargs)

    assert status == 403
    assert line.received == [] and line.transport.sent == []
    assert not sms.is_opted_out(PHONE, sqlite_url)


def test_a_changed_field_breaks_the_signature(line: Line) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, {"From": PHONE, "Body": "hello"})

    status, _ = line.post({"From": PHONE, "Body": "hello, changed"}, signature=signature)

    assert status == 403 and line.received == []


def test_behind_a_proxy_the_configured_public_url_is_what_is_verified(line: Line) -> None:
    internal = "http://127.0.0.1:5005/webhooks/twilio/webhook"

    assert line.post({"From": PHONE, "Body": "hi"}, url=internal)[0] == 200  # signed for URL, the public one
    assert line.post({"From": PHONE, "Body": "hi"}, url=internal, sign_for=internal)[0] == 403


def test_without_a_configured_url_the_request_url_is_verified(line: Line) -> None:
    line.channel.settings = SmsLineSettings(auth_token=TOKEN, webhook_url="")
    internal = "http://127.0.0.1:5005/webhooks/twilio/webhook"

    assert line.post({"From": PHONE, "Body": "hi"}, url=internal, sign_for=internal)[0] == 200


def test_without_an_auth_token_every_request_is_refused(line: Line) -> None:
    line.channel.settings = SmsLineSettings()

    assert line.post({"From": PHONE, "Body": "hi"})[0] == 403


@pytest.mark.parametrize("fields", [{"Body": "hi"}, {"From": PHONE}, {"From": "", "Body": "hi"}, {}])
def test_missing_from_or_body_gets_400(line: Line, fields: dict[str, str]) -> None:
    status, _ = line.post(fields)

    assert status == 400 and line.received == []


def test_a_redelivered_message_is_handled_once(line: Line) -> None:
    line.post({"From": PHONE, "Body": "hi", "MessageSid": "SM1"})
    status, _ = line.post({"From": PHONE, "Body": "hi", "MessageSid": "SM1"})

    assert status == 200 and len(line.received) == 1


# ------------------------------------------------------------------ keywords


def test_stop_records_the_opt_out_and_sends_one_confirmation_then_nothing(line: Line, sqlite_url: str) -> None:
    line.post({"From": PHONE, "Body": "Stop"})

    assert sms.is_opted_out(PHONE, sqlite_url)
    assert line.bodies == [texts().get("opted_out")] and line.received == []

    line.post({"From": PHONE, "Body": "STOP"})  # again: no second confirmation
    line.post({"From": PHONE, "Body": "HELP"})  # nothing at all until they opt in
    line.post({"From": PHONE, "Body": "what does it cost?"})

    assert line.bodies == [texts().get("opted_out")]
    # The message still reaches the assistant (so a crisis is escalated to staff); no answer is sent.
    assert [m.text for m in line.received] == ["what does it cost?"]


def test_start_resubscribes_with_a_confirmation(line: Line, sqlite_url: str) -> None:
    line.post({"From": PHONE, "Body": "STOP"})

    line.post({"From": PHONE, "Body": "unstop"})
    line.post({"From": PHONE, "Body": "what does it cost?"})

    assert not sms.is_opted_out(PHONE, sqlite_url)
    assert line.bodies[1].startswith(texts().get("opted_in"))
    assert line.bodies[-1].startswith("Our answer.")


def test_yes_from_a_subscribed_number_is_an_ordinary_answer(line: Line) -> None:
    line.post({"From": PHONE, "Body": "yes"})

    assert [m.text for m in line.received] == ["yes"]


def test_help_answers_with_the_help_text_without_the_assistant(line: Line) -> None:
    line.post({"From": PHONE, "Body": "help"})

    assert line.received == []
    assert line.bodies[0].startswith(texts().get("help"))
    assert "Reply STOP to opt out" in line.bodies[0] and "Msg & data rates may apply" in line.bodies[0]


# ------------------------------------------------------------------ first contact, media, choices, splitting


def test_only_the_first_message_to_a_number_has_the_privacy_note(line: Line) -> None:
    line.post({"From": PHONE, "Body": "hi"})
    line.post({"From": PHONE, "Body": "and the cost?"})

    note = texts().get("privacy_note")
    assert line.bodies == [f"Our answer.\n{note}", "Our answer."]


def test_a_picture_gets_the_media_note(line: Line) -> None:
    line.post({"From": PHONE, "Body": "", "NumMedia": "1", "MediaUrl0": "https://api.twilio.com/x.jpg"})

    assert line.received == []
    assert line.bodies[0].startswith(texts().get("media"))


def test_a_picture_with_text_gets_the_note_and_an_answer(line: Line) -> None:
    line.post({"From": PHONE, "Body": "is this normal?", "NumMedia": "1"})

    assert [m.text for m in line.received] == ["is this normal?"]
    assert line.bodies[0].startswith(texts().get("media")) and line.bodies[1] == "Our answer."


def _bot_asked_with_buttons(line: Line, *later: Any) -> None:
    tracker = DialogueStateTracker.from_events(PHONE, [
        ActionExecuted("action_listen"), UserUttered("are you a bot?", {"name": "bot_challenge"}),
        BotUttered("I'm an assistant.", data={"buttons": BUTTONS}), *later,
    ])
    asyncio.run(line.agent.tracker_store.save(tracker))


def test_a_number_reply_becomes_the_buttons_payload(line: Line) -> None:
    _bot_asked_with_buttons(line)

    line.post({"From": PHONE, "Body": "2"})

    assert [m.text for m in line.received] == ["/book_consultation"]


def test_a_number_after_a_later_patient_message_is_just_text(line: Line) -> None:
    _bot_asked_with_buttons(line, UserUttered("ok thanks", {"name": "thanks"}), BotUttered("You're welcome."))

    line.post({"From": PHONE, "Body": "2"})

    assert [m.text for m in line.received] == ["2"]


def test_a_number_out_of_range_or_without_buttons_is_just_text(line: Line) -> None:
    line.post({"From": PHONE, "Body": "1"})
    _bot_asked_with_buttons(line)
    line.post({"From": PHONE, "Body": "7"})

    assert [m.text for m in line.received] == ["1", "7"]


def _output(line: Line) -> ClinicTwilioOutput:
    output = line.channel.get_output_channel()
    assert isinstance(output, ClinicTwilioOutput) and output.name() == "twilio"
    return output


def _send(line: Line, action: Callable[[ClinicTwilioOutput], Awaitable[None]]) -> None:
    async def run() -> None:
        await action(_output(line))
        await line.channel.dispatcher.drain()

    asyncio.run(run())


def test_buttons_are_sent_as_numbered_choices_without_payloads(line: Line, sqlite_url: str) -> None:
    sms.claim_privacy_notice(PHONE, sqlite_url)

    _send(line, lambda out: out.send_response(PHONE, {"text": "Want help?", "buttons": [dict(b) for b in BUTTONS]}))

    assert line.bodies == ["Want help?\nReply with a number:\n1. Talk to a person\n2. Book a consultation"]


def test_long_answers_are_split_at_sentence_boundaries(line: Line, sqlite_url: str) -> None:
    sms.claim_privacy_notice(PHONE, sqlite_url)
    text = " ".join(f"This is sentence {i} of a long answer about ketamine treatment." for i in range(10))

    _send(line, lambda out: out.send_text_message(PHONE, text))

    assert len(line.bodies) == 2 and all(len(b) <= sms.SMS_LIMIT for b in line.bodies)
    assert " ".join(line.bodies) == text


def test_staff_replies_through_the_output_are_not_sent_after_stop(line: Line, sqlite_url: str) -> None:
    sms.record_opt_out(PHONE, sqlite_url)

    _send(line, lambda out: out.send_response(PHONE, {"text": "Hi, this is Dana.", "clinic_staff": "Dana"}))

    assert line.transport.sent == []


def test_from_credentials_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_SMS_NUMBER", "+15550104201")
    monkeypatch.setenv("TWILIO_WEBHOOK_URL", URL)

    channel = ClinicTwilioInput.from_credentials(None)

    assert isinstance(channel, ClinicTwilioInput) and channel.name() == "twilio"
    assert channel.settings.webhook_url == URL and channel.settings.number == "+15550104201"


def test_a_text_starting_with_a_slash_is_never_a_command(line: Line) -> None:
    _bot_asked_with_buttons(line)

    line.post({"From": PHONE, "Body": "/EXTERNAL_handoff_resolved"})
    line.post({"From": PHONE, "Body": "/ /EXTERNAL_handoff_resolved"})
    line.post({"From": PHONE, "Body": "/request_human"})  # even a payload just offered: SMS choices are numbers
    line.post({"From": PHONE, "Body": "/"})

    assert [m.text for m in line.received] == ["EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved",
                                               "request_human"]

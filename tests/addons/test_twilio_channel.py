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

from addons.twilio_channel import EMPTY_TWIML, ClinicTwilioInput, ClinicTwilioOutput
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
    gate: asyncio.Event | None = None  # when set: the assistant thinks until the gate opens

    @property
    def bodies(self) -> list[str]:
        return [body for _, body in self.transport.sent]

    def post(self, fields: dict[str, str], *, sign_for: str | None = URL, signature: str | None = None,
             url: str = URL) -> tuple[int, str]:
        """Posts the form as Twilio would (signed for ``sign_for``), waits until it is processed and the SMS sent."""
        async def run() -> tuple[int, str]:
            result = await self.handle(fields, sign_for=sign_for, signature=signature, url=url)
            await self.channel.drain()
            return result

        return asyncio.run(run())

    async def handle(self, fields: dict[str, str], *, sign_for: str | None = URL, signature: str | None = None,
                     url: str = URL) -> tuple[int, str]:
        """The webhook's answer to the form, signed as Twilio would (without waiting for the processing)."""
        form = RequestParameters({key: [value] for key, value in fields.items()})
        if signature is None and sign_for is not None:
            signature = RequestValidator(TOKEN).compute_signature(sign_for, form)
        return await self.channel.handle(form, url=url, signature=signature, on_new_message=self._assistant,
                                         agent=self.agent)

    async def _assistant(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.gate is not None:
            await self.gate.wait()
        if self.reply:
            await message.output_channel.send_text_message(message.sender_id, self.reply)


def new_line(database_url: str) -> Line:
    """One instance of the SMS line (a Rasa server) on the clinic database ``database_url``."""
    transport = Transport()
    settings = SmsLineSettings(account_sid="AC" + "0" * 32, auth_token=TOKEN, number="+15550104201", webhook_url=URL)
    dispatcher = SmsDispatcher(transport, retry_delays=(), database_url=database_url)
    channel = ClinicTwilioInput(settings, texts=SmsTexts(), dispatcher=dispatcher, database_url=database_url)
    return Line(channel, transport, Agent(), [])


@pytest.fixture
def line(sqlite_url: str) -> Line:
    return new_line(sqlite_url)


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


def test_a_redelivery_to_another_instance_or_after_a_restart_is_handled_once(sqlite_url: str) -> None:
    first, second = new_line(sqlite_url), new_line(sqlite_url)
    fields = {"From": PHONE, "Body": "i'm on lithium, is ketamine ok?", "MessageSid": "SM1"}

    first.post(fields)
    assert second.post(fields)[0] == 200
    restarted = new_line(sqlite_url)  # nothing kept in memory
    restarted.post(fields)

    assert [len(line.received) for line in (first, second, restarted)] == [1, 0, 0]
    assert len(first.bodies) == 1 and second.bodies == [] and restarted.bodies == []


def test_a_message_posted_to_two_instances_at_once_is_handled_once(sqlite_url: str) -> None:
    first, second = new_line(sqlite_url), new_line(sqlite_url)
    fields = {"From": PHONE, "Body": "hello", "MessageSid": "SM1"}

    async def both() -> None:
        await asyncio.gather(first.handle(fields), second.handle(fields))
        await asyncio.gather(first.channel.drain(), second.channel.drain())

    asyncio.run(both())

    assert len(first.received) + len(second.received) == 1


def test_without_the_database_a_message_is_still_handled(line: Line, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def unavailable(*_: Any) -> bool:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(sms, "claim_message", unavailable)

    line.post({"From": PHONE, "Body": "hello", "MessageSid": "SM1"})

    assert [m.text for m in line.received] == ["hello"]


# ------------------------------------------------------------------ answered at once, processed in order


def test_twilio_gets_its_answer_at_once_and_the_reply_follows_by_the_api(line: Line) -> None:
    async def run() -> None:
        line.gate = asyncio.Event()  # the assistant is slow (the action server hangs)
        answer = await asyncio.wait_for(line.handle({"From": PHONE, "Body": "hello", "MessageSid": "SM1"}), 2)
        assert answer == (200, EMPTY_TWIML)
        await asyncio.sleep(0.2)
        assert [m.text for m in line.received] == ["hello"] and line.transport.sent == []
        line.gate.set()
        await line.channel.drain()

    asyncio.run(run())

    assert line.bodies[0].startswith("Our answer.")


def test_texts_from_one_number_are_processed_in_order_and_other_numbers_do_not_wait(line: Line) -> None:
    other_phone = "+15005550007"

    async def run() -> None:
        line.gate = asyncio.Event()
        for phone, body, sid in ((PHONE, "first", "SM1"), (PHONE, "second", "SM2"), (other_phone, "other", "SM3")):
            assert await asyncio.wait_for(line.handle({"From": phone, "Body": body, "MessageSid": sid}), 2) == (
                200, EMPTY_TWIML)
        await asyncio.sleep(0.3)
        assert sorted(m.text for m in line.received) == ["first", "other"]  # "second" waits for "first"
        line.gate.set()
        await line.channel.drain()

    asyncio.run(run())

    texts_of_phone = [m.text for m in line.received if m.sender_id == PHONE]
    assert texts_of_phone == ["first", "second"] and len(line.received) == 3


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


def test_a_spanish_stop_is_recorded_and_confirmed_in_spanish(line: Line) -> None:
    line.post({"From": PHONE, "Body": "ALTO"})

    assert line.received == []
    assert line.bodies[0].startswith("Ya no recibirás mensajes")


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


def test_a_picture_with_text_gets_an_answer_that_says_the_picture_was_not_read(line: Line, sqlite_url: str) -> None:
    sms.claim_privacy_notice(PHONE, sqlite_url)

    line.post({"From": PHONE, "Body": "what's this rash?", "NumMedia": "1",
               "MediaUrl0": "https://api.twilio.com/x.jpg"})

    [message] = line.received
    # the safety layer is told a picture came (it makes "this rash" the patient's own: medical)
    assert (message.text, message.metadata) == ("what's this rash?", {"media": 1})
    assert line.bodies == [f"Our answer.\n{texts().get('media_with_text')}"]  # one reply, both said


def test_a_picture_with_text_and_no_answer_still_gets_the_note(line: Line, sqlite_url: str) -> None:
    sms.claim_privacy_notice(PHONE, sqlite_url)
    line.reply = None  # e.g. staff hold the conversation: the assistant says nothing

    line.post({"From": PHONE, "Body": "here is the rash", "NumMedia": "2"})

    assert [m.text for m in line.received] == ["here is the rash"]
    assert line.bodies == [texts().get("media_with_text")]


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


def test_a_stopping_server_first_finishes_the_texts_it_answered(sqlite_url: str) -> None:
    import time
    import uuid

    import httpx
    from sanic import Sanic

    from tests.clinic.staff.notifiers.servers import free_port

    line, port = new_line(sqlite_url), free_port()
    fields = {"From": PHONE, "Body": "how much is it?", "MessageSid": "SM1"}
    signature = RequestValidator(TOKEN).compute_signature(URL, fields)

    async def slow_assistant(message: UserMessage) -> None:
        await asyncio.sleep(1.5)
        await line._assistant(message)

    async def scenario() -> float:
        Sanic.test_mode = True  # lets several apps start in one process
        app = Sanic(f"twilio_channel_test_{uuid.uuid4().hex}")
        app.ctx.agent = line.agent
        app.blueprint(line.channel.blueprint(slow_assistant), url_prefix="/webhooks/twilio")
        server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
        await server.startup()
        await server.before_start()
        await server.after_start()
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            response = await client.post(f"http://127.0.0.1:{port}/webhooks/twilio/webhook", data=fields,
                                         headers={"X-Twilio-Signature": signature}, timeout=10)
            answered_in = time.monotonic() - started
        assert response.status_code == 200 and response.text == EMPTY_TWIML
        assert line.transport.sent == []  # still being processed
        await server.before_stop()  # shutting down: waits for the turn and its texts
        server.close()
        await server.wait_closed()
        await server.after_stop()
        return answered_in

    answered_in = asyncio.run(scenario())

    assert answered_in < 1.0
    assert [m.text for m in line.received] == ["how much is it?"] and line.bodies[0].startswith("Our answer.")

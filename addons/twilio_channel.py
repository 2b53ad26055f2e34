"""Rasa glue: the clinic's SMS line through Twilio (replaces Rasa's ``twilio`` connector).

Configured in credentials.yml as ``addons.twilio_channel.ClinicTwilioInput``; values missing
there come from the environment (``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``,
``TWILIO_SMS_NUMBER``, ``TWILIO_WEBHOOK_URL``, ``TWILIO_API_BASE``, ``SMS_RETRY_DELAYS``; see
:class:`clinic.channels.sms.SmsLineSettings`). Twilio posts incoming messages to
``/webhooks/twilio/webhook``. The channel is named ``twilio``, so the ``channel: twilio``
response variants are used and staff replies reach the patient (:meth:`get_output_channel`).

Per request: a missing or wrong ``X-Twilio-Signature`` gets 403 and nothing else happens;
a missing ``From`` or ``Body`` gets 400. Anything else gets empty TwiML at once, and the message
is processed in the background, one message at a time per number, in the order they arrived:
Twilio stops waiting after 15 s, and the turn (with the patient's message and every reply) must
reach the tracker however long the assistant takes. Replies go out through the dispatcher, never
in the TwiML. A re-delivered ``MessageSid`` is processed once (the clinic database decides, for
every instance). On shutdown, messages being processed and texts queued are finished first (at
most :data:`SHUTDOWN_DRAIN_SECONDS`). Carrier keywords, numbered choices, splitting, the privacy
note and background sending are :mod:`clinic.channels.sms`'s rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from addons.socketio_channel import offered_buttons
from clinic.channels import MEDIA_METADATA_KEY, SMS_CHANNEL, sms
from clinic.channels.patient_input import only_offered_payloads
from clinic.channels.request_limits import limit_request_size
from clinic.channels.sms import InOrder, Keyword, SmsDispatcher, SmsLineSettings, SmsTexts, TwilioSmsTransport
from clinic.reading.language import detect_language

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
SHUTDOWN_DRAIN_SECONDS = 10.0  # on shutdown, wait this long for messages being processed and texts queued


class ClinicTwilioOutput(OutputChannel):
    """Sends the assistant's (and staff's) messages to one number through the dispatcher.

    Nothing is sent to a number that opted out. The first message to a number carries the
    privacy note. Buttons become numbered choices; text is split at sentence boundaries.
    ``note``: a line added to the first message sent through this output (the reply to one
    patient message), e.g. that a picture sent with it cannot be read; None: nothing added.
    """

    @classmethod
    def name(cls) -> str:
        return SMS_CHANNEL

    def __init__(self, dispatcher: SmsDispatcher, texts: SmsTexts, database_url: str | None = None) -> None:
        self.dispatcher = dispatcher
        self.texts = texts
        self.database_url = database_url
        self.note: str | None = None
        self.language = "en"  # of the line's own texts (keyword answers, notes, the choices prompt)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Queues the text (split when long), after the privacy note check."""
        await self._send(recipient_id, text)

    async def send_text_with_buttons(self, recipient_id: str, text: str, buttons: list[dict[str, Any]],
                                     **kwargs: Any) -> None:
        """Buttons become numbered lines; the patient answers with the number."""
        prompt = self.texts.get("choices_prompt", self.language)
        await self._send(recipient_id, sms.numbered_choices(text, buttons, prompt))

    async def send_quick_replies(self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]],
                                 **kwargs: Any) -> None:
        await self.send_text_with_buttons(recipient_id, text, quick_replies, **kwargs)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self._send(recipient_id, image)

    async def send_attachment(  # type: ignore[override]
        self, recipient_id: str, attachment: str, **kwargs: Any
    ) -> None:
        if isinstance(attachment, str):
            await self._send(recipient_id, attachment)

    async def send_elements(self, recipient_id: str, elements: Any, **kwargs: Any) -> None:
        logger.debug("sms: carousel elements are not sent")

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        if isinstance(json_message.get("text"), str):
            await self._send(recipient_id, json_message["text"])

    async def send_line_text(self, recipient_id: str, name: str) -> None:
        """Queues one of the line's own texts (HELP answer, media note...)."""
        await self._send(recipient_id, self.texts.get(name, self.language))

    async def send_note(self, recipient_id: str) -> None:
        """Queues the note on its own, if no message has carried it (the assistant said nothing)."""
        note, self.note = self.note, None
        if note:
            await self._send(recipient_id, note)

    async def _send(self, phone: str, text: str) -> None:
        if not text or not text.strip():
            return
        if self.note:
            text, self.note = f"{text.strip()}\n{self.note}", None
        if await asyncio.to_thread(sms.is_opted_out, phone, self.database_url):
            logger.info("sms to %s not sent: the number opted out", sms.contact_ref(phone))
            return
        if await asyncio.to_thread(sms.claim_privacy_notice, phone, self.database_url):
            text = f"{text.strip()}\n{self.texts.get('privacy_note', self.language)}"
        for part in sms.split_sms(text):
            self.dispatcher.submit(phone, part)


class ClinicTwilioInput(InputChannel):
    """Twilio webhook for the patient SMS line (signature-checked, keyword-aware)."""

    @classmethod
    def name(cls) -> str:
        return SMS_CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """credentials.yml's keys, else the environment (the line may be left unconfigured)."""
        settings = SmsLineSettings.from_sources(credentials)
        if not settings.can_verify:
            logger.warning("SMS line disabled: TWILIO_AUTH_TOKEN is not set, so every webhook request gets 403")
        elif not settings.can_send:
            logger.warning("SMS line cannot send: set TWILIO_ACCOUNT_SID and TWILIO_SMS_NUMBER")
        return cls(settings)

    def __init__(self, settings: SmsLineSettings, *, texts: SmsTexts | None = None,
                 dispatcher: SmsDispatcher | None = None, database_url: str | None = None) -> None:
        """Args:
            settings: account, number, webhook URL and retry policy.
            texts: the line's own texts (default: clinic/channels/sms_texts.yml with clinic.yml).
            dispatcher: background sender (default: Twilio's API through :mod:`clinic.channels.sms`).
            database_url: the clinic database (default ``CLINIC_DATABASE_URL``).
        """
        self.settings = settings
        self.texts = texts or SmsTexts()
        self.database_url = database_url
        self.dispatcher = dispatcher or SmsDispatcher(
            TwilioSmsTransport(settings), retry_delays=settings.retry_delays, database_url=database_url
        )
        self._turns = InOrder()  # messages being processed, in order per number

    def get_output_channel(self) -> OutputChannel:
        """The SMS output (Rasa's HTTP API uses it for staff replies and the hand-back)."""
        return ClinicTwilioOutput(self.dispatcher, self.texts, self.database_url)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        twilio_webhook = Blueprint("clinic_twilio_webhook", __name__)
        limit_request_size(twilio_webhook)

        @twilio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @twilio_webhook.listener("before_server_stop")
        async def finish_work(*_: Any) -> None:
            if not await self.drain(SHUTDOWN_DRAIN_SECONDS):
                logger.warning("sms: stopping with messages still being processed or texts not sent")

        @twilio_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            form = _form(request)
            status, body = await self.handle(
                form,
                url=request.url,
                signature=request.headers.get("X-Twilio-Signature"),
                on_new_message=on_new_message,
                agent=getattr(request.app.ctx, "agent", None),
            )
            if status == 200:
                return response.text(body, status=200, content_type="text/xml")
            return response.text(body, status=status)

        return twilio_webhook

    def signature_ok(self, url: str, form: Mapping[str, Any], signature: str | None) -> bool:
        """Whether ``signature`` is Twilio's for the configured webhook URL (else ``url``) and form."""
        if not self.settings.can_verify or not signature:
            return False
        return RequestValidator(self.settings.auth_token).validate(self.settings.webhook_url or url, form, signature)

    async def handle(self, form: RequestParameters, *, url: str, signature: str | None,
                     on_new_message: Callable[[UserMessage], Awaitable[Any]], agent: Any = None) -> tuple[int, str]:
        """Checks one webhook request and starts processing it in the background.

        Args:
            form: the POSTed fields (blank values kept).
            url: the URL the request arrived at (used when no webhook URL is configured).
            signature: the ``X-Twilio-Signature`` header.
            on_new_message: Rasa's handler for a patient message.
            agent: Rasa's agent (its tracker store maps numbered replies to button payloads).

        Returns:
            The HTTP status and body, without waiting for the assistant.
        """
        if not self.signature_ok(url, form, signature):
            logger.warning("sms webhook refused: %s X-Twilio-Signature", "invalid" if signature else "missing")
            return 403, "invalid signature"
        sender_and_body = _sender_and_body(form)
        if sender_and_body is None:
            logger.warning("sms webhook refused: From or Body missing")
            return 400, "From and Body are required"
        phone, body = sender_and_body
        message_sid = form.get("MessageSid") or form.get("SmsSid")
        media = _media_count(form)
        self._turns.submit(phone, lambda: self._process(phone, body, message_sid, media, on_new_message, agent))
        return 200, EMPTY_TWIML

    async def drain(self, timeout: float | None = None) -> bool:
        """Waits until the messages received so far are processed and their texts sent (at most ``timeout`` s).

        Returns:
            Whether nothing is left.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        processed = await self._turns.drain(timeout)
        left = None if deadline is None else max(0.0, deadline - loop.time())
        return await self.dispatcher.drain(left) and processed

    async def _process(self, phone: str, body: str, message_sid: str | None, media: int,
                       on_new_message: Callable[[UserMessage], Awaitable[Any]], agent: Any) -> None:
        """One patient text: de-duplication, carrier keywords, pictures, then the assistant."""
        ref = sms.contact_ref(phone)
        try:
            if message_sid and not await self._first_delivery(message_sid):
                logger.info("sms from %s already handled (Twilio re-delivery)", ref)
                return
            if not self.settings.can_send:
                logger.error("sms from %s not answered: the SMS line cannot send (configuration)", ref)
            await asyncio.to_thread(sms.ensure_contact, phone, self.database_url)
            output = ClinicTwilioOutput(self.dispatcher, self.texts, self.database_url)
            output.language = sms.keyword_language(body) or detect_language(body) or await _language_of(agent, phone)
            if await self._answered_keyword(output, phone, body):
                return
            text = _patient_text(body)
            if not text:
                if media:
                    await output.send_line_text(phone, "media")
                return
            if media:  # the text is read (the safety layer knows a picture came), and the reply
                # says the picture was not seen
                output.note = self.texts.get("media_with_text", output.language)
            payload = await self._chosen_payload(agent, phone, text)
            # An opted-out patient's messages still reach the assistant (a crisis is escalated to
            # staff, who see the opt-out in the console); the output sends nothing to them.
            metadata = {MEDIA_METADATA_KEY: media} if media else None
            await on_new_message(UserMessage(payload or text, output, phone, input_channel=self.name(),
                                             metadata=metadata))
            await output.send_note(phone)
        except Exception:  # a background task: nobody else would see it
            logger.exception("sms from %s could not be processed", ref)

    async def _first_delivery(self, message_sid: str) -> bool:
        """Whether this ``MessageSid`` is new (taken now in the clinic database)."""
        try:
            return await asyncio.to_thread(sms.claim_message, message_sid, self.database_url)
        except SQLAlchemyError:
            # processing a re-delivery twice is better than losing a message (it may be a crisis)
            logger.exception("sms MessageSid could not be recorded; the message is processed anyway")
            return True

    async def _answered_keyword(self, output: ClinicTwilioOutput, phone: str, body: str) -> bool:
        """Answers a carrier keyword (STOP, START when opted out, HELP); False: the message is for the assistant."""
        ref = sms.contact_ref(phone)
        word = sms.keyword(body)
        if word is Keyword.OPT_OUT:
            if await asyncio.to_thread(sms.record_opt_out, phone, self.database_url):
                logger.info("sms %s opted out", ref)
                self.dispatcher.submit(phone, self.texts.get("opted_out", output.language), even_if_opted_out=True)
            return True
        if word is Keyword.OPT_IN and await asyncio.to_thread(sms.record_opt_in, phone, self.database_url):
            logger.info("sms %s opted in again", ref)
            await output.send_line_text(phone, "opted_in")
            return True
        if word is Keyword.HELP:
            await output.send_line_text(phone, "help")  # not sent if the number opted out
            return True
        return False

    async def _chosen_payload(self, agent: Any, phone: str, text: str) -> str | None:
        """A numbered reply's payload, from the buttons of the bot's messages since the patient's last one."""
        if agent is None or agent.tracker_store is None or not sms.is_choice(text):
            return None
        return sms.chosen_payload(text, offered_buttons(await agent.tracker_store.retrieve(phone), latest_only=True))


async def _language_of(agent: Any, phone: str) -> str:
    """The conversation's language (its ``language`` slot), English when there is none yet."""
    if agent is None or agent.tracker_store is None:
        return "en"
    tracker = await agent.tracker_store.retrieve(phone)
    language = tracker.get_slot("language") if tracker is not None else None
    return language if language in sms.LANGUAGES else "en"


def _form(request: Request) -> RequestParameters:
    """The urlencoded fields with blank values kept (Sanic drops them; Twilio signs them)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return RequestParameters()
    try:
        fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return RequestParameters()
    return RequestParameters(fields)


def _sender_and_body(form: Mapping[str, Any]) -> tuple[str, str] | None:
    """The sender's number and the message (possibly blank); None when either field is missing."""
    phone = (form.get("From") or "").strip()
    body = form.get("Body")
    if not phone or body is None:
        return None
    return phone, body


def _patient_text(body: str) -> str:
    """The text for the assistant ("" when there is none)."""
    text = body.replace("¡", "@")  # some carriers corrupt "@" (as in Rasa's connector)
    if not text.strip():
        return ""
    # Over SMS, choices are numbers: a text starting with "/" is never a command (intent).
    return only_offered_payloads(text, [])


def _media_count(form: Mapping[str, Any]) -> int:
    try:
        return int(form.get("NumMedia") or 0)
    except (TypeError, ValueError):
        return 0

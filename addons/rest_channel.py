"""Rasa glue: the REST channel for integrations, tests and tools (replaces Rasa's ``rest``).

Configured in credentials.yml as ``addons.rest_channel.ClinicRestInput``; named ``rest``, so it
answers at the same URL, ``POST /webhooks/rest/webhook`` with ``{"sender": ..., "message": ...,
"metadata": {...}}`` (``?stream=true`` streams the replies as Rasa's does), and the replies are
the same list of messages. Unlike Rasa's connector, which writes anything into any conversation:

* With ``RASA_API_TOKEN`` set, a request needs it, as ``?token=`` (like Rasa's HTTP API) or an
  ``Authorization: Bearer`` header: 401 otherwise.
* The body must be a JSON object (400 otherwise: array, ``null``, a number, not JSON). ``sender``
  is required: a string of 1 to 128 characters from ``A-Z a-z 0-9 _ . : @ + -`` (400 otherwise;
  there is no shared ``default`` conversation). ``message`` must be a string (400 otherwise; it
  may be empty: the assistant asks to rephrase).
* A ``sender`` in another channel's namespace gets 403: a phone number or Twilio address (the
  SMS line's conversations) or the website widget's session token
  (:func:`clinic.channels.patient_input.owning_channel`). The body's ``input_channel`` is
  ignored: the conversation's channel is always ``rest``.
* A message starting with "/" is a command only when it is the payload of a button just offered
  (and never an ``EXTERNAL_`` intent); otherwise it loses its slashes and is read as text, as on
  the other channels (:func:`clinic.channels.patient_input.only_offered_payloads`).
* A message longer than ``MAX_MESSAGE_CHARS`` (4,000 characters) gets 413 asking for a shorter
  one. ``metadata`` must be a JSON object of at most :data:`MAX_METADATA_BYTES`; only the keys in
  :data:`ALLOWED_METADATA_KEYS` with plain values are kept (the rest are dropped).
* An ``X-Request-ID`` header (nginx sends its ``$request_id``, the same on a retry; 1 to 128 of
  ``A-Z a-z 0-9 _ . : -``, otherwise ignored) becomes the message's id: a request delivered again
  after its turn was saved is answered with that turn's saved replies, not processed twice
  (:mod:`addons.rasa_patches.repeated_requests`). Streamed requests are never retried by nginx
  (their answer has begun) and keep Rasa's own ids.
* Refused requests are never passed to Rasa: nothing is written. Logs name the reason only
  (never the sender id or the text), and a failed turn is logged without its text.
* The Rasa server reads no body larger than ``RASA_MAX_REQUEST_BYTES``
  (:mod:`clinic.channels.request_limits`).
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from asyncio import CancelledError
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from addons.socketio_channel import offered_buttons
from clinic import settings
from clinic.channels import REQUEST_ID_PREFIX, SMS_CHANNEL
from clinic.channels.patient_input import WEB_CHANNEL, only_offered_payloads, owning_channel
from clinic.channels.request_limits import limit_request_size

logger = logging.getLogger(__name__)

REST_CHANNEL = "rest"
MAX_SENDER_CHARS = 128
SENDER_ID = re.compile(r"^[A-Za-z0-9_.:@+-]+$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
ALLOWED_METADATA_KEYS = frozenset({"client", "source", "language", "locale", "timezone"})
"""Metadata kept with a message (who sent it through which integration, the patient's language
and time zone); other keys are dropped."""
MAX_METADATA_BYTES = 2048
"""The largest ``metadata`` accepted, as compact JSON in UTF-8 (larger gets 413)."""
CHANNEL_LABELS = {SMS_CHANNEL: "the SMS line", WEB_CHANNEL: "the website chat"}


class Refused(Exception):
    """A request the channel does not pass to Rasa: the HTTP status and a JSON answer."""

    def __init__(self, status: int, reason: str, error: str) -> None:
        super().__init__(error)
        self.status, self.reason, self.error = status, reason, error

    def response(self) -> HTTPResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="rasa"'} if self.status == 401 else None
        return response.json({"error": self.error, "reason": self.reason}, status=self.status, headers=headers)


@dataclass(frozen=True)
class RestMessage:
    """An accepted request: the conversation, the text and the metadata kept."""

    sender: str
    text: str
    metadata: dict[str, Any] | None


def parse_body(body: bytes, max_message_chars: int) -> RestMessage:
    """The message in a webhook body.

    Raises:
        Refused: 400 for a body, ``sender``, ``message`` or ``metadata`` of the wrong form;
            403 for a sender in another channel's namespace; 413 for a message or metadata too long.
    """
    try:
        payload = json.loads(body or b"")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
        raise Refused(400, "invalid_json", 'Send a JSON object: {"sender": "...", "message": "..."}.') from None
    if not isinstance(payload, dict):
        raise Refused(400, "body_not_object", 'The body must be a JSON object: {"sender": "...", "message": "..."}.')
    sender = _sender(payload.get("sender"))
    text = payload.get("message")
    if not isinstance(text, str):
        raise Refused(400, "invalid_message", '"message" is required and must be a string (it may be empty).')
    if len(text.strip()) > max_message_chars:
        raise Refused(413, "message_too_long",
                      f"Please send a shorter message: at most {max_message_chars} characters.")
    return RestMessage(sender, text, _metadata(payload.get("metadata")))


def _sender(sender: Any) -> str:
    if not isinstance(sender, str) or not sender:
        raise Refused(400, "invalid_sender", '"sender" is required: the conversation id, a non-empty string.')
    if len(sender) > MAX_SENDER_CHARS:
        raise Refused(400, "invalid_sender", f'"sender" must be at most {MAX_SENDER_CHARS} characters.')
    if not SENDER_ID.match(sender):
        raise Refused(400, "invalid_sender",
                      '"sender" may only contain letters, digits and the characters _ . : @ + -')
    owner = owning_channel(sender)
    if owner is not None and owner != REST_CHANNEL:
        raise Refused(403, "sender_of_another_channel",
                      f'This "sender" has the form of {CHANNEL_LABELS.get(owner, owner)}\'s conversation ids; '
                      "the REST channel cannot write to those conversations. Use another id.")
    return sender


def _metadata(metadata: Any) -> dict[str, Any] | None:
    """The metadata kept: the allowed keys with plain values (None when there are none)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise Refused(400, "invalid_metadata", '"metadata" must be a JSON object.')
    try:
        size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except (ValueError, RecursionError):  # nested too deep
        raise Refused(400, "invalid_metadata", '"metadata" must be a JSON object of plain values.') from None
    if size > MAX_METADATA_BYTES:
        raise Refused(413, "metadata_too_large", f'"metadata" must be at most {MAX_METADATA_BYTES} bytes of JSON.')
    kept = {key: value for key, value in metadata.items() if key in ALLOWED_METADATA_KEYS and _plain(value)}
    return kept or None


def _plain(value: Any) -> bool:
    """Text, a finite number, true/false or null."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def request_message_id(header: str | None) -> str | None:
    """The message id for a request's ``X-Request-ID`` header, or None (no header, or not an id)."""
    value = (header or "").strip()
    return f"{REQUEST_ID_PREFIX}{value}" if REQUEST_ID.match(value) else None


def provided_token(request: Request) -> str | None:
    """The token a request carries: ``?token=``, else an ``Authorization: Bearer`` header."""
    token = request.args.get("token")
    if token:
        return str(token)
    scheme, _, credentials = (request.headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


class ClinicRestInput(RestInput):
    """Rasa's REST channel with a token, validated requests and channel-owned conversation ids."""

    @classmethod
    def name(cls) -> str:
        return REST_CHANNEL

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> InputChannel:
        """No keys in credentials.yml: the settings come from the environment."""
        return cls(token=settings.rasa_api_token(), max_message_chars=settings.max_message_chars())

    def __init__(self, token: str | None = None, max_message_chars: int = 4000,
                 max_request_bytes: int | None = None) -> None:
        """Args:
            token: required from every request when set (``RASA_API_TOKEN``).
            max_message_chars: the longest text accepted (``MAX_MESSAGE_CHARS``).
            max_request_bytes: the Rasa server's largest request body (default
                ``RASA_MAX_REQUEST_BYTES``, read when the server starts).
        """
        self.token = token or None
        self.max_message_chars = max_message_chars
        self.max_request_bytes = max_request_bytes

    def authorized(self, request: Request) -> bool:
        if self.token is None:
            return True
        provided = provided_token(request)
        return provided is not None and hmac.compare_digest(provided.encode(), self.token.encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        limit_request_size(webhook, self.max_request_bytes)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse | ResponseStream:
            try:
                if not self.authorized(request):
                    raise Refused(401, "unauthorized",
                                  "This server requires its API token (?token=... or Authorization: Bearer ...).")
                message = parse_body(request.body, self.max_message_chars)
            except Refused as refused:  # never logged with the sender id or the text
                level = logging.WARNING if refused.status in (401, 403) else logging.INFO
                logger.log(level, "rest webhook refused: %d %s", refused.status, refused.reason)
                return refused.response()
            text = await self._patient_text(request, message)
            if bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(on_new_message, text, message.sender, self.name(), message.metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, message.sender, input_channel=self.name(),
                                                 metadata=message.metadata,
                                                 message_id=request_message_id(request.headers.get("X-Request-ID"))))
            except CancelledError:
                logger.error("rest message timed out")
            except Exception:  # noqa: BLE001 - as Rasa's connector: answer with what was said so far
                logger.exception("rest message failed")
            return response.json(collector.messages)

        return webhook

    async def _patient_text(self, request: Request, message: RestMessage) -> str:
        """The text for Rasa: a "/" command only when it is a button just offered in this conversation."""
        if not message.text.strip().startswith("/"):
            return message.text
        agent = getattr(request.app.ctx, "agent", None)
        store = getattr(agent, "tracker_store", None)
        tracker = await store.retrieve(message.sender) if store is not None else None
        return only_offered_payloads(message.text, offered_buttons(tracker))

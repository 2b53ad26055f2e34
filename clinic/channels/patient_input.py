"""What every patient channel does to a patient's message before Rasa sees it.

* **Typed text is never a command.** Rasa reads a message starting with ``/`` as an intent
  (``/intent{"entity": ...}``, ``/intent@0.9``), so a patient typing ``/EXTERNAL_handoff_resolved``
  would end the hand-off. :func:`only_offered_payloads` lets through only the payload of a button
  the assistant has just offered (and never one naming an ``EXTERNAL_`` intent: those come from
  the clinic's side, through the token-protected HTTP API); anything else loses its leading
  slashes and is read as ordinary text. The socket.io, SMS and REST channels all use it.
* **Channels own their conversation ids.** :func:`owning_channel` names the channel whose
  conversation an id is, when the id has a form only that channel makes: a phone number (the SMS
  line's ids are the patient's number in E.164 form, or a Twilio address such as
  ``whatsapp:+1...``), or the website widget's session token (32 random bytes in URL-safe
  base64: 43 characters; or Rasa's own uuid4 hex, 32 characters, given to a socket that asked
  for no usable id). The REST channel refuses those ids, so it can never write into an SMS or a
  web conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from clinic.channels import SMS_CHANNEL

WEB_CHANNEL = "socketio"
"""The website widget's Rasa channel name (``addons/socketio_channel.py``)."""

COMMAND_PREFIX = "/"
EXTERNAL_INTENT_PREFIX = "EXTERNAL_"

# Twilio's sender addresses: "+15551234567" (SMS, MMS), "whatsapp:+1555...", "messenger:...",
# "rcs:..."; "sms:" and "tel:" are reserved for the SMS line too.
_SMS_ID = re.compile(r"^(\+|(whatsapp|messenger|rcs|sms|mms|tel):)", re.IGNORECASE)
# The widget's session token (clinic-chat.js newSessionId), and Rasa's socket.io default (uuid4 hex).
_WEB_SESSION_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_RASA_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def _button_payloads(buttons: Iterable[Mapping[str, Any]]) -> set[str]:
    return {str(b.get("payload") or "") for b in buttons if isinstance(b, Mapping)}


def is_external_command(text: str) -> bool:
    """Whether ``text`` is Rasa's syntax for an ``EXTERNAL_`` intent (``/EXTERNAL_...``)."""
    return text.strip().lstrip(COMMAND_PREFIX).strip().upper().startswith(EXTERNAL_INTENT_PREFIX)


def only_offered_payloads(text: str, buttons: Iterable[Mapping[str, Any]]) -> str:
    """The text to give Rasa for a patient's message.

    A message starting with "/" (after surrounding whitespace, as Rasa strips it) is a command to
    Rasa. It passes unchanged only when it is exactly the payload of one of ``buttons`` (the
    buttons just offered) and does not name an ``EXTERNAL_`` intent; otherwise every leading "/"
    is removed (``"/ /EXTERNAL_x"`` too) and the rest is read as ordinary text, possibly empty.

    Args:
        text: what the patient sent.
        buttons: the buttons the assistant offered since the patient's previous message (none
            on the SMS line, whose choices are numbers).
    """
    stripped = text.strip()
    if not stripped.startswith(COMMAND_PREFIX):
        return text
    if stripped in _button_payloads(buttons) and not is_external_command(stripped):
        return text
    while stripped.startswith(COMMAND_PREFIX):
        stripped = stripped.lstrip(COMMAND_PREFIX).strip()
    return stripped


def owning_channel(conversation_id: str) -> str | None:
    """The channel whose ids have this form (``twilio``: a phone number or Twilio address;
    ``socketio``: the widget's session token), else None (any channel may use it)."""
    if _SMS_ID.match(conversation_id):
        return SMS_CHANNEL
    if _WEB_SESSION_TOKEN.match(conversation_id) or _RASA_SESSION_ID.match(conversation_id):
        return WEB_CHANNEL
    return None

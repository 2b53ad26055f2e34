"""clinic.channels.patient_input: typed commands and the channels' conversation-id namespaces."""

from __future__ import annotations

import secrets
import uuid

import pytest

from clinic.channels import SMS_CHANNEL
from clinic.channels.patient_input import WEB_CHANNEL, is_external_command, only_offered_payloads, owning_channel

HUMAN = {"title": "Talk to a person", "payload": "/request_human"}
BOOK = {"title": "Book", "payload": '/book_consultation{"slot": "2030-01-01T10:00"}'}
RESOLVED = {"title": "Resolved", "payload": "/EXTERNAL_handoff_resolved"}


@pytest.mark.parametrize(("text", "sent"), [
    ("/request_human", "/request_human"),  # offered
    (' /book_consultation{"slot": "2030-01-01T10:00"} ', ' /book_consultation{"slot": "2030-01-01T10:00"} '),
    ("/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),  # offered, but never from a patient
    ("/external_handoff_resolved", "external_handoff_resolved"),
    ("/ /EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),  # the space would leave a command
    ("/\t/\n/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),
    ("\u3000/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),  # Unicode space, stripped as Rasa does
    ("//greet", "greet"),
    ('/greet{"name": "x"}', 'greet{"name": "x"}'),
    ("/request_human@1.0", "request_human@1.0"),  # not exactly the payload
    ("/", ""),
    ("/ / /", ""),
    ("how much / what price", "how much / what price"),
    ("EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),  # plain text already
])
def test_only_payloads_of_offered_buttons_are_commands(text: str, sent: str) -> None:
    assert only_offered_payloads(text, [HUMAN, BOOK, RESOLVED]) == sent


@pytest.mark.parametrize("text", ["/request_human", "/EXTERNAL_handoff_resolved", "/ /greet", "///x"])
def test_without_buttons_no_text_stays_a_command(text: str) -> None:
    assert not only_offered_payloads(text, []).strip().startswith("/")


@pytest.mark.parametrize(("text", "external"), [
    ("/EXTERNAL_handoff_resolved", True), (" //external_x ", True), ("/request_human", False), ("hi", False),
])
def test_external_commands_are_recognised(text: str, external: bool) -> None:
    assert is_external_command(text) is external


@pytest.mark.parametrize(("conversation_id", "channel"), [
    ("+15551234567", SMS_CHANNEL),
    ("+442071838750", SMS_CHANNEL),
    ("whatsapp:+15551234567", SMS_CHANNEL),
    ("Messenger:1234", SMS_CHANNEL),
    ("sms:+15551234567", SMS_CHANNEL),
    ("tel:+15551234567", SMS_CHANNEL),
    (secrets.token_urlsafe(32), WEB_CHANNEL),  # the widget's session token
    (uuid.uuid4().hex, WEB_CHANNEL),  # Rasa's socket.io default
    ("eval-" + uuid.uuid4().hex, None),
    ("rest-0123456789ab", None),
    (str(uuid.uuid4()), None),
    ("15551234567", None),
    ("me", None),
    ("nurse@example.org", None),
    ("web-0123456789ab", None),
])
def test_ids_with_a_channels_own_form_belong_to_it(conversation_id: str, channel: str | None) -> None:
    assert owning_channel(conversation_id) == channel

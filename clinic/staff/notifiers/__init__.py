"""Staff notifiers: how clinic staff hear about a new or newly urgent escalation.

Each notifier sends a :class:`StaffAlert` one way (Slack-compatible webhook, email over SMTP,
SMS through Twilio) and raises :class:`NotifierError` when it could not. An alert carries no
patient information at all: only the escalation number, its urgency, the reason category, the
channel, the conversation's language and a link to the staff console, where staff sign in to
read the conversation.

Which notifiers run, and their settings, comes from the environment (see
:func:`clinic.staff.notifications.load_notifiers`); the outbox and retries live in
:mod:`clinic.staff.notifications`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

SEND_TIMEOUT = 10.0
"""Seconds a notifier waits for its server (per connection step) before giving up."""

REASON_LABELS = {
    "crisis": "crisis",
    "emergency": "emergency",
    "medical_question": "medical question",
    "asked_for_staff": "asked for staff",
    "safety_checkin": "safety check-in",
}
CHANNEL_LABELS = {"rest": "web chat", "socketio": "web chat", "twilio": "SMS"}
LANGUAGE_LABELS = {"en": "English", "es": "Spanish"}
_SAFE_LABEL = re.compile(r"[^a-z0-9_-]")


class ConfigError(ValueError):
    """A notifier is selected but its settings are missing or invalid (names the variable)."""


class NotifierError(Exception):
    """A notifier could not deliver an alert. The message is safe to store and log: it never
    contains the alert, secrets, webhook URLs or contact details."""


@dataclass(frozen=True)
class StaffAlert:
    """What staff are told about an escalation: no patient text, name, contact or conversation id.

    Attributes:
        escalation_id: the escalation's number.
        event: ``opened`` (a new escalation) or ``urgent`` (an open one became urgent).
        urgent: whether a staff member is needed now.
        reason: the escalation's reason code (``crisis``, ``medical_question``...).
        channel: the patient's Rasa channel (``rest``, ``socketio``, ``twilio``...).
        console_link: the escalation's page in the staff console.
        language: the conversation's language (``en``, ``es``), so the on-call person knows
            who can take it; None when unknown (escalations recorded before it was kept).
    """

    escalation_id: int
    event: str
    urgent: bool
    reason: str
    channel: str
    console_link: str
    language: str | None = None

    @property
    def reason_label(self) -> str:
        """The reason category in words (``medical question``)."""
        return REASON_LABELS.get(self.reason, "other")

    @property
    def channel_label(self) -> str:
        """The patient's channel in words (``web chat``, ``SMS``)."""
        known = CHANNEL_LABELS.get(self.channel)
        return known or (_SAFE_LABEL.sub("", self.channel.lower())[:32] or "unknown channel")

    @property
    def language_label(self) -> str | None:
        """The conversation's language in words (``Spanish``), or None when unknown."""
        return LANGUAGE_LABELS.get(self.language or "")

    @property
    def subject(self) -> str:
        """A one-line summary (email subject)."""
        if self.urgent:
            return f"URGENT: escalation #{self.escalation_id} ({self.reason_label}, {self.channel_label})"
        return f"New escalation #{self.escalation_id} ({self.reason_label}, {self.channel_label})"

    @property
    def text(self) -> str:
        """The full alert (chat message, email body, SMS), ASCII only so an SMS stays one segment."""
        what = f"escalation #{self.escalation_id} ({self.reason_label}, {self.channel_label})"
        if self.urgent and self.event == "urgent":
            head = f"URGENT: {what} became urgent and needs a staff member now"
        elif self.urgent:
            head = f"URGENT: {what} needs a staff member now"
        else:
            head = f"New {what} waiting"
        language = f" - Language: {self.language_label}" if self.language_label else ""
        return f"{head}{language} - open the staff console: {self.console_link}"


@runtime_checkable
class Notifier(Protocol):
    """Sends staff alerts one way.

    Attributes:
        name: the notifier's name in ``STAFF_NOTIFIERS`` and the outbox (``slack``, ``email``, ``sms``).
    """

    name: str

    def send(self, message: StaffAlert) -> None:
        """Delivers the alert.

        Raises:
            NotifierError: the alert was not delivered (it will be retried).
        """


def require(environ: Mapping[str, str], notifier: str, names: tuple[str, ...]) -> dict[str, str]:
    """The values of required settings, stripped.

    Args:
        environ: the environment to read.
        notifier: the notifier needing them (for the error message).
        names: the variables it requires.

    Returns:
        Every variable's value.

    Raises:
        ConfigError: naming every required variable that is unset or empty.
    """
    values = {name: (environ.get(name) or "").strip() for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(
            f"STAFF_NOTIFIERS includes {notifier!r} but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set"
        )
    return values

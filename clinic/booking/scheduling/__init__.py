"""Scheduling backends: where consultations are booked. One interface, one module per backend.

* :mod:`clinic.booking.scheduling.builtin` (the embedded default): open times from clinic.yml (hours per
  weekday, slot length, parallel chairs, blocked dates), bookings in the clinic database.
* :mod:`clinic.booking.scheduling.calcom`: a Cal.com event type through Cal.com's API v2.
* :mod:`clinic.booking.scheduling.webhook`: the clinic's own system; each request is POSTed to it as
  signed JSON and staff confirm it (nothing is booked at once).

``booking.backend`` in clinic.yml chooses one (:func:`get_scheduler`); secrets come from the
environment. :mod:`clinic.booking.service` is the service the chat and the staff console use: it offers
slots, books with a fallback to a staff request when a backend fails, and finds, moves and
cancels bookings by phone and booking code.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from clinic.clock import as_utc
from clinic.profile import ClinicProfile
from clinic.settings import environment

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0 or 1: easy to read back
CODE_LENGTH = 6
_CODE_CHARS = frozenset(CODE_ALPHABET)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class SchedulerError(Exception):
    """The backend could not do it (misconfigured, refused, answered with an error).

    The message is safe to log: it never holds patient details, secrets or URLs.
    """


class SchedulerUnavailable(SchedulerError):
    """The backend did not answer (down, timed out, overloaded): trying later may work."""


class SlotTaken(Exception):
    """The chosen time is no longer free (someone else booked it first)."""


@dataclass(frozen=True)
class Slot:
    """A bookable consultation time (aware datetimes)."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """The start in UTC, as compared and stored: ``2026-11-24T21:00:00+00:00``."""
        return as_utc(self.start).isoformat()


@dataclass(frozen=True)
class Patient:
    """What the booking form collected (contact details are never logged)."""

    full_name: str
    phone: str  # E.164
    email: str | None
    visit_reason: str | None
    patient_type: str | None  # new | returning
    sms_consent: bool


@dataclass(frozen=True)
class BookingDraft:
    """A booking the patient confirmed, for one backend to place."""

    patient: Patient
    slot: Slot
    conversation_id: str
    channel: str
    preferred_time_text: str | None = None


@dataclass(frozen=True)
class Appointment:
    """A booking or a booking request as the patient (and staff) see it."""

    kind: str  # booking | request
    id: int
    code: str
    start: datetime | None  # aware (UTC)
    end: datetime | None
    status: str  # booked | pending | requested | confirmed | cancelled
    backend: str | None
    external_uid: str | None = None
    phone: str | None = None

    @property
    def is_request(self) -> bool:
        return self.kind == "request"


@dataclass(frozen=True)
class Placed:
    """What a backend did with a draft: booked (final) or requested (staff confirm)."""

    appointment: Appointment

    @property
    def confirmed(self) -> bool:
        return self.appointment.status == "booked"


class Scheduler(Protocol):
    """A scheduling backend.

    Attributes:
        name: ``builtin``, ``calcom`` or ``webhook`` (stored with each booking).
        books_instantly: True when :meth:`book` books for good; False when it only requests.
    """

    name: str
    books_instantly: bool

    def open_slots(self, start: datetime, end: datetime, database_url: str | None = None) -> list[Slot]:
        """Free consultation slots starting in ``[start, end)``, earliest first.

        Raises:
            SchedulerError: the backend failed (:class:`SchedulerUnavailable` when it is down).
        """

    def book(self, draft: BookingDraft, database_url: str | None = None) -> Placed:
        """Books (or requests) the draft's slot and records it with a new booking code.

        Raises:
            SlotTaken: the slot is no longer free.
            SchedulerError: the backend failed; nothing was booked.
        """

    def reschedule(self, appointment: Appointment, slot: Slot, database_url: str | None = None) -> Placed:
        """Moves a booking (or a request) to another slot, keeping its code.

        Raises:
            SlotTaken: the slot is no longer free.
            SchedulerError: the backend failed; nothing changed.
        """

    def cancel(self, appointment: Appointment, by: str, database_url: str | None = None) -> None:
        """Cancels a booking (or a request); ``by`` is "patient" or a staff username.

        Raises:
            SchedulerError: the backend failed; nothing changed.
        """


def new_code() -> str:
    """A random booking code patients can read back, like ``K7M4QX`` (32^6, about 10^9)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_candidates(text: str) -> list[str]:
    """Possible booking codes in what the patient typed ("k7m-4qx", "code: K7M 4QX").

    A word that could be a code comes first, then consecutive words that together could be one;
    "thanks" could be a code too, so the caller looks each candidate up.
    """
    words = re.sub(r"[^A-Z0-9\s]", "", re.sub(r"[,;:.!?/]", " ", (text or "").upper())).split()
    found: list[str] = []
    for size in range(1, CODE_LENGTH + 1):
        for i in range(len(words) - size + 1):
            candidate = "".join(words[i : i + size])
            if len(candidate) == CODE_LENGTH and set(candidate) <= _CODE_CHARS and candidate not in found:
                found.append(candidate)
    return found


def secure_url(url: str, variable: str) -> str:
    """``url`` if it is https (plain http only to this machine): patient details travel in it.

    Raises:
        SchedulerError: naming ``variable`` (never the URL, which may hold a token).
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if not parts.hostname or not secure:
        raise SchedulerError(f"{variable} must be an https:// URL")
    return url


def get_scheduler(profile: ClinicProfile, environ: Mapping[str, str] | None = None,
                  backend: str | None = None) -> Scheduler:
    """The backend chosen in clinic.yml (``booking.backend``), configured from the environment.

    Args:
        profile: the clinic profile.
        environ: the settings (default: the process environment).
        backend: another backend than clinic.yml's (for a booking made before a switch).

    Raises:
        SchedulerError: the backend's settings are missing or invalid (naming the setting).
    """
    environ = environment() if environ is None else environ
    backend = backend or profile.booking.backend
    if backend == "calcom":
        from clinic.booking.scheduling.calcom import CalcomScheduler

        return CalcomScheduler.from_env(profile, environ)
    if backend == "webhook":
        from clinic.booking.scheduling.webhook import WebhookScheduler

        return WebhookScheduler.from_env(profile, environ)
    from clinic.booking.scheduling.builtin import BuiltinScheduler

    return BuiltinScheduler(profile)

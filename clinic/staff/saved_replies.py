"""Saved replies: reply templates staff insert into the reply box, then edit and send.

Most replies staff write are the same few (a call-back offer, "bring your medication list",
an after-hours note), so administrators keep them here: a name, the text and, optionally, the
channel it suits (``web`` or ``sms``; None: both). The text keeps four placeholders that are
filled in for each conversation when staff insert it (:data:`PLACEHOLDERS`): the clinic's name,
phone and hours from the clinic profile (``clinic.yml``, so a changed phone number is used at
once), and the patient's first name from the conversation's booking or its ``patient_name``
slot, or a friendly stand-in ("there") when the clinic does not know it.

Templates are retired rather than deleted, so the audit trail's ids keep meaning something.
Every change is audited (:mod:`clinic.staff.audit`); the defaults come from
``saved_replies.yml`` beside this module, seeded once by the migration that creates the table.

Template text is clinic wording, not patient data; the filled-in text holds a first name and is
never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinic.channels import SMS_CHANNEL
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, BookingRequest, SavedReply, session_scope
from clinic.profile import ClinicProfile, ProfileError, load_profile
from clinic.staff import audit
from clinic.staff.accounts import StaffMember
from clinic.staff.inbox import InvalidText, validate_text
from clinic.staff.transcript import latest_slot_value

logger = logging.getLogger(__name__)

DATA_FILE = Path(__file__).with_name("saved_replies.yml")
PLACEHOLDERS = ("clinic_name", "phone", "hours", "patient_first_name")
CHANNELS = ("web", "sms")
NAME_LIMIT = 80
BODY_LIMIT = 1500  # leaves room in a reply (clinic.staff.inbox.TEXT_LIMIT) for the filled-in hours
NAME_SLOT = "patient_name"
SEEDED_BY = "setup"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIRST_NAME = re.compile(r"^[^\W\d_][\w'’.-]{0,39}$")

# Audit actions of this module (listed in clinic.staff.audit.ACTIONS).
CREATE = "saved_reply_create"
EDIT = "saved_reply_edit"
RETIRE = "saved_reply_retire"
RESTORE = "saved_reply_restore"


class InvalidReply(InvalidText):
    """A name, text or channel that cannot be saved; the message is meant for staff."""


class DuplicateName(InvalidReply):
    """Another saved reply in use has this name."""


class UnknownReply(LookupError):
    """No saved reply with this id."""

    def __init__(self) -> None:
        super().__init__("No such saved reply.")
        self.message = "No such saved reply."


@dataclass(frozen=True)
class SavedReplyView:
    """A saved reply as administrators manage it (``body`` with its placeholders)."""

    id: int
    name: str
    body: str
    channel: str | None
    retired: bool
    created_by: str | None
    updated_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReadyReply:
    """A saved reply filled in for one conversation, ready to insert into the reply box."""

    id: int
    name: str
    channel: str | None
    text: str


# ------------------------------------------------------------------ placeholders


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


def unknown_first_name() -> str:
    """What ``{patient_first_name}`` becomes when the clinic does not know the name."""
    return str(_data()["unknown_first_name"])


def render(body: str, values: Mapping[str, str]) -> str:
    """``body`` with each ``{placeholder}`` in ``values`` filled in (others are left as typed)."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), body)


def placeholder_values(profile: ClinicProfile, first_name: str | None) -> dict[str, str]:
    """The values of :data:`PLACEHOLDERS` for one conversation (English wording of the hours)."""
    answers = profile.answer_values("en")
    return {
        "clinic_name": profile.name,
        "phone": answers["clinic_phone"],
        "hours": answers["clinic_hours"],
        "patient_first_name": first_name or unknown_first_name(),
    }


def first_name_of(full_name: str | None) -> str | None:
    """The first word of a name as the patient typed it, when it looks like a name."""
    words = (full_name or "").strip().split()
    if not words or not _FIRST_NAME.match(words[0]):
        return None
    first = words[0].rstrip(".")
    return first[:1].upper() + first[1:] if first.islower() else first


def patient_first_name(conversation_id: str, *, database_url: str | None = None,
                       tracker_url: str | None = None) -> str | None:
    """The patient's first name: from the conversation's latest booking or booking request, else
    from its ``patient_name`` slot in the tracker store (a booking form left half-way); None when
    neither knows it or the tracker store cannot be read."""
    with session_scope(database_url) as session:
        full_name = _latest_name(session, conversation_id)
    if full_name is None:
        try:
            value = latest_slot_value(conversation_id, NAME_SLOT, tracker_url=tracker_url)
        except Exception as exc:  # noqa: BLE001 - the name is a nicety: the stand-in will do
            logger.warning("name slot unavailable (%s)", type(exc).__name__)
            value = None
        full_name = value if isinstance(value, str) else None
    return first_name_of(full_name)


def _latest_name(session: Session, conversation_id: str) -> str | None:
    for model in (Booking, BookingRequest):
        name = session.execute(
            select(model.full_name)
            .where(model.conversation_id == conversation_id)
            .order_by(model.created_at.desc(), model.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if name:
            return str(name)
    return None


def channel_of(conversation_channel: str) -> str:
    """``sms`` for the SMS line, ``web`` for the website chat (and the REST channel)."""
    return "sms" if conversation_channel == SMS_CHANNEL else "web"


# ------------------------------------------------------------------ reading


def _view(row: SavedReply) -> SavedReplyView:
    return SavedReplyView(
        id=row.id, name=row.name, body=row.body, channel=row.channel, retired=bool(row.retired),
        created_by=row.created_by, updated_by=row.updated_by, created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def list_replies(*, include_retired: bool = False, channel: str | None = None,
                 database_url: str | None = None) -> list[SavedReplyView]:
    """Saved replies by name (those in use first when retired ones are included).

    Args:
        include_retired: also the retired ones (the administrators' page).
        channel: only those for this channel (``web`` or ``sms``) or for every channel.
    """
    query = select(SavedReply).order_by(SavedReply.retired, func.lower(SavedReply.name), SavedReply.id)
    if not include_retired:
        query = query.where(SavedReply.retired.is_(False))
    if channel is not None:
        query = query.where((SavedReply.channel.is_(None)) | (SavedReply.channel == channel))
    with session_scope(database_url) as session:
        return [_view(row) for row in session.execute(query).scalars()]


def get_reply(reply_id: int, *, database_url: str | None = None) -> SavedReplyView:
    """One saved reply, retired or not.

    Raises:
        UnknownReply: no such saved reply.
    """
    with session_scope(database_url) as session:
        return _view(_load(session, reply_id))


def replies_for(conversation_id: str, conversation_channel: str, profile: ClinicProfile, *,
                database_url: str | None = None, tracker_url: str | None = None) -> list[ReadyReply]:
    """The saved replies in use that suit this conversation's channel, filled in for it."""
    replies = list_replies(channel=channel_of(conversation_channel), database_url=database_url)
    if not replies:
        return []
    name = patient_first_name(conversation_id, database_url=database_url, tracker_url=tracker_url)
    values = placeholder_values(profile, name)
    return [ReadyReply(item.id, item.name, item.channel, render(item.body, values)) for item in replies]


# ------------------------------------------------------------------ changes (administrators)


def _load(session: Session, reply_id: Any, *, for_update: bool = False) -> SavedReply:
    if not isinstance(reply_id, int) or isinstance(reply_id, bool) or not 0 < reply_id <= 2**31 - 1:
        raise UnknownReply()
    query = select(SavedReply).where(SavedReply.id == reply_id)
    row = session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
    if row is None:
        raise UnknownReply()
    return row


def _require_admin(user: StaffMember) -> None:
    if not user.is_admin:
        raise PermissionError("Only administrators can change saved replies.")


def clean_name(name: Any) -> str:
    """The name, trimmed.

    Raises:
        InvalidReply: not text, empty, too long or with control characters.
    """
    if not isinstance(name, str):
        raise InvalidReply("The name must be text.")
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidReply("Give the saved reply a name.")
    if len(cleaned) > NAME_LIMIT or _CONTROL.search(cleaned):
        raise InvalidReply(f"The name is too long: at most {NAME_LIMIT} characters.")
    return cleaned


def clean_body(body: Any) -> str:
    """The text, cleaned up like a reply, with only known placeholders.

    Raises:
        InvalidReply: empty, too long, with control characters, or with a placeholder other
            than :data:`PLACEHOLDERS` (a typo would reach the patient as typed).
    """
    try:
        cleaned = validate_text(body, "Saved reply")
    except InvalidText as exc:
        raise InvalidReply(exc.message) from None
    if len(cleaned) > BODY_LIMIT:
        raise InvalidReply(f"Saved reply is too long: {len(cleaned):,} characters, at most {BODY_LIMIT:,}.")
    unknown = sorted({name for name in _PLACEHOLDER.findall(cleaned) if name not in PLACEHOLDERS})
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        raise InvalidReply(f"Unknown placeholder {', '.join(f'{{{name}}}' for name in unknown)}: use {known}.")
    return cleaned


def clean_channel(channel: Any) -> str | None:
    """``web``, ``sms`` or None (every channel; also from an empty form field).

    Raises:
        InvalidReply: anything else.
    """
    if channel is None or channel == "":
        return None
    if channel not in CHANNELS:
        raise InvalidReply("The channel must be web, sms, or empty for both.")
    return str(channel)


def _check_unique(session: Session, name: str, reply_id: int | None) -> None:
    query = select(SavedReply.id).where(func.lower(SavedReply.name) == name.lower(), SavedReply.retired.is_(False))
    if reply_id is not None:
        query = query.where(SavedReply.id != reply_id)
    if session.execute(query.limit(1)).first() is not None:
        raise DuplicateName(f"A saved reply named “{name}” is already in use: choose another name.")


def create_reply(user: StaffMember, name: Any, body: Any, channel: Any = None, *, via: str = "console",
                 database_url: str | None = None) -> SavedReplyView:
    """Adds a saved reply (administrators only).

    Raises:
        PermissionError: ``user`` is not an administrator.
        InvalidReply: a bad name, text or channel; DuplicateName: the name is in use.
    """
    _require_admin(user)
    values = clean_name(name), clean_body(body), clean_channel(channel)
    with session_scope(database_url) as session:
        _check_unique(session, values[0], None)
        row = SavedReply(name=values[0], body=values[1], channel=values[2], retired=False,
                         created_by=user.username, updated_by=user.username)
        session.add(row)
        session.flush()
        audit.record(session, user, CREATE, None, f"saved reply {row.id}; via {via}")
        return _view(row)


def update_reply(reply_id: int, user: StaffMember, name: Any, body: Any, channel: Any = None, *,
                 via: str = "console", database_url: str | None = None) -> SavedReplyView:
    """Changes a saved reply's name, text and channel (administrators only).

    Raises:
        PermissionError: ``user`` is not an administrator.
        UnknownReply: no such saved reply.
        InvalidReply: a bad name, text or channel; DuplicateName: the name is in use.
    """
    _require_admin(user)
    values = clean_name(name), clean_body(body), clean_channel(channel)
    with session_scope(database_url) as session:
        row = _load(session, reply_id, for_update=True)
        if not row.retired:
            _check_unique(session, values[0], row.id)
        row.name, row.body, row.channel = values
        row.updated_by, row.updated_at = user.username, utcnow()
        session.flush()
        audit.record(session, user, EDIT, None, f"saved reply {row.id}; via {via}")
        return _view(row)


def set_retired(reply_id: int, user: StaffMember, retired: bool, *, via: str = "console",
                database_url: str | None = None) -> SavedReplyView:
    """Retires a saved reply (no longer offered to staff) or puts it back in use (administrators only).

    Raises:
        PermissionError: ``user`` is not an administrator.
        UnknownReply: no such saved reply.
        DuplicateName: putting it back while another one in use has its name.
    """
    _require_admin(user)
    with session_scope(database_url) as session:
        row = _load(session, reply_id, for_update=True)
        if bool(row.retired) == retired:
            return _view(row)
        if not retired:
            _check_unique(session, row.name, row.id)
        row.retired = retired
        row.updated_by, row.updated_at = user.username, utcnow()
        session.flush()
        audit.record(session, user, RETIRE if retired else RESTORE, None, f"saved reply {row.id}; via {via}")
        return _view(row)


# ------------------------------------------------------------------ defaults (first migration)


def default_rows(profile: ClinicProfile | None) -> list[dict[str, Any]]:
    """The default saved replies as table rows, with clinic.yml's other fields filled in.

    Args:
        profile: the clinic profile; None uses the ``without_profile`` wording of the data file.

    Raises:
        KeyError: a default uses a field that neither the profile nor the data file has.
    """
    data = _data()
    fields = profile.answer_values("en") if profile is not None else dict(data["without_profile"])
    live = {name: f"{{{name}}}" for name in PLACEHOLDERS}
    now = utcnow()
    rows = []
    for item in data["defaults"]:
        body = _PLACEHOLDER.sub(lambda match: live.get(match.group(1)) or fields[match.group(1)], item["text"])
        rows.append({
            "name": clean_name(item["name"]), "body": clean_body(body), "channel": clean_channel(item.get("channel")),
            "retired": False, "created_by": SEEDED_BY, "updated_by": SEEDED_BY, "created_at": now, "updated_at": now,
        })
    return rows


def seed_rows() -> list[dict[str, Any]]:
    """:func:`default_rows` from the clinic profile in use (``CLINIC_PROFILE`` or clinic.yml).

    A profile that cannot be read does not stop the migration: the defaults are then worded
    without it (the live placeholders still fill in from the profile later).
    """
    try:
        profile: ClinicProfile | None = load_profile()
    except (ProfileError, OSError) as exc:
        logger.warning("saved replies seeded without the clinic profile (%s)", type(exc).__name__)
        profile = None
    return default_rows(profile)

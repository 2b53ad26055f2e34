"""Staff-side work on escalations: the inbox, claiming, notes, replies and resolving.

The console's pages and its JSON API both call these functions; each one that views or
changes an escalation writes its audit event (:mod:`clinic.staff.audit`) in the same transaction.

Replies and hand-back go through :mod:`clinic.rasa_api` (Rasa's HTTP API). A reply is first
stored as ``sending``, then marked ``delivered`` or ``failed`` with the reason; resolving
hands the conversation back to the assistant first and is only recorded when that worked,
so a failed hand-back leaves the escalation open for staff to retry.

What the inbox calls outside the clinic database (the tracker store, Rasa's HTTP API, the
notifier outbox, the SMS opt-outs) is gathered in :data:`services`; tests replace it with fakes.

Patient text is returned to the caller and never logged.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import ColumnElement, Select

from clinic.booking.scheduling import code_candidates
from clinic.channels import SMS_CHANNEL
from clinic.channels.sms import is_opted_out
from clinic.clock import as_utc, utcnow
from clinic.contact import normalize_phone
from clinic.db import (
    Booking,
    BookingRequest,
    Escalation,
    EscalationMessage,
    EscalationNote,
    StaffReply,
    StaffUser,
    session_scope,
)
from clinic.rasa_api import Delivery, hand_back, send_staff_reply
from clinic.staff import audit
from clinic.staff.accounts import StaffMember
from clinic.staff.notifications import NotificationStatus, failing, list_for_escalation
from clinic.staff.transcript import ActivityWindow, PatientActivity, TranscriptEntry, patient_activity, read_transcript

logger = logging.getLogger(__name__)

TEXT_LIMIT = 2000
STATUSES = ("open", "resolved")
FILTERS = ("all", "mine", "unassigned")
MAX_ID = 2**31 - 1  # ids beyond a 32-bit integer cannot exist (and would make PostgreSQL fail)
PAGE_SIZE = 200
FIND_BY = ("any", "conversation", "phone")
FIND_LIMIT = 100
MAX_QUERY = 255  # the longest conversation id
MIN_SEARCH = 3  # the shortest text looked for inside names and messages
MAX_IDS_IN_DETAIL = 20
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE_TEXT = re.compile(r"^\+?[\d\s().-]{7,30}$")
_TWILIO_SCHEMES = ("whatsapp", "sms", "mms", "tel", "rcs")  # Twilio addresses of a number (clinic.channels)


class InboxError(Exception):
    """An inbox operation that cannot be done; the message is meant for staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(InboxError):
    """No escalation (or reply) with this id."""


class Conflict(InboxError):
    """The escalation's state does not allow this.

    Attributes:
        reason: ``resolved`` (it is resolved already) or ``claimed`` (someone else has it).
    """

    def __init__(self, message: str, reason: str = "resolved") -> None:
        super().__init__(message)
        self.reason = reason


class InvalidText(InboxError, ValueError):
    """A reply or note that is empty, too long or not text."""


class InvalidCursor(InboxError, ValueError):
    """A page cursor this listing did not make (edited, or from another status)."""


class InvalidQuery(InboxError, ValueError):
    """What to find is empty, too long, or not a phone number when one is asked for."""


@dataclass(frozen=True)
class StaffRef:
    """A staff member as shown next to their work."""

    id: int
    username: str
    display_name: str


@dataclass(frozen=True)
class EscalationSummary:
    """An escalation as the inbox lists it; listings add the start of the latest patient message."""

    id: int
    conversation_id: str
    channel: str
    reason: str
    urgency: str
    status: str
    guard_rule: str | None
    language: str | None  # the conversation's language (en | es); None on rows from before it was kept
    created_at: datetime
    updated_at: datetime | None
    resolved_at: datetime | None
    last_patient_message_at: datetime | None
    last_reply_at: datetime | None
    assigned_to: StaffRef | None
    resolved_by: StaffRef | None
    preview: str | None = None  # the start of the latest patient message (from the tracker store)
    since_reply: int = 0  # patient messages since the last staff reply (open escalations)

    @property
    def awaiting_reply(self) -> bool:
        """The patient wrote after the last staff reply (or nobody has replied yet)."""
        if self.status != "open":
            return False
        last_patient = self.last_patient_message_at or self.created_at
        return self.last_reply_at is None or last_patient > self.last_reply_at

    def waiting_seconds(self, now: datetime | None = None) -> int:
        """How long it has been open (or was open, once resolved)."""
        end = self.resolved_at if self.status == "resolved" and self.resolved_at else (now or utcnow())
        return max(0, int((end - self.created_at).total_seconds()))


@dataclass(frozen=True)
class EscalationPage:
    """One page of the inbox: its rows and the cursor of the next page (None: the last page)."""

    rows: list[EscalationSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class PatientMessage:
    """A patient message recorded with the escalation (the escalating ones, and hand-off ones)."""

    id: int
    message_id: str
    reason: str
    text: str | None
    created_at: datetime


@dataclass(frozen=True)
class NoteView:
    """An internal note."""

    id: int
    author: StaffRef | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class ReplyView:
    """A staff reply and its delivery."""

    id: int
    author: StaffRef | None
    text: str
    status: str
    error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class EscalationDetail:
    """An escalation with everything recorded about it in the clinic database."""

    summary: EscalationSummary
    trigger_text: str | None
    messages: list[PatientMessage] = field(default_factory=list)
    notes: list[NoteView] = field(default_factory=list)
    replies: list[ReplyView] = field(default_factory=list)


@dataclass(frozen=True)
class ResolveResult:
    """The outcome of resolving: ``ok`` False means the hand-back failed (``error`` says why)."""

    ok: bool
    error: str | None
    escalation: EscalationSummary


@dataclass(frozen=True)
class TranscriptResult:
    """Transcript entries, or why they could not be read."""

    entries: list[TranscriptEntry]
    error: str | None = None


@dataclass(frozen=True)
class Services:
    """What the inbox calls outside the clinic database; each is the real function unless replaced.

    Attributes:
        read_transcript: ``(conversation_id, after_id=...)`` -> entries, from Rasa's tracker store.
        send_staff_reply: ``(conversation_id, text, staff_name=..., database_url=...)`` -> :class:`Delivery`.
        hand_back: ``(conversation_id)`` -> :class:`Delivery`, through Rasa's HTTP API.
        list_notifications: ``(escalation_id, database_url=...)`` -> the escalation's notifications.
        failing_notifications: ``(database_url=...)`` -> notifications that keep failing.
        is_opted_out: ``(phone, database_url=...)`` -> whether an SMS patient replied STOP.
        patient_activity: ``(windows)`` -> the inbox rows' latest patient message and counts,
            from Rasa's tracker store.
    """

    read_transcript: Callable[..., Iterable[TranscriptEntry]] = read_transcript
    send_staff_reply: Callable[..., Delivery] = send_staff_reply
    hand_back: Callable[..., Delivery] = hand_back
    list_notifications: Callable[..., Iterable[NotificationStatus]] = list_for_escalation
    failing_notifications: Callable[..., Iterable[NotificationStatus]] = failing
    is_opted_out: Callable[..., bool] = is_opted_out
    patient_activity: Callable[..., dict[int, PatientActivity]] = patient_activity


services = Services()


# ------------------------------------------------------------------ conversions


def _ref(user: StaffUser | None) -> StaffRef | None:
    return StaffRef(user.id, user.username, user.display_name) if user is not None else None


def _guard_rule(guard_reason: Any) -> str | None:
    """What decided, for staff: the rule (or the risk model, or a check-in), its sentence and score."""
    if not isinstance(guard_reason, dict):
        return None
    rule = guard_reason.get("rule") or ("safety_checkin" if guard_reason.get("safety") == "checkin" else None)
    if rule is None:
        return None
    details = []
    if isinstance(guard_reason.get("sentence"), int):
        details.append(f"sentence {guard_reason['sentence'] + 1}")
    risk = guard_reason.get("risk")
    if isinstance(risk, dict) and (rule in ("risk_model", "safety_checkin")):
        score = max(float(risk.get("crisis") or 0), float(risk.get("emergency") or 0))
        details.append(f"risk {score:.2f}")
    return f"{rule} ({', '.join(details)})" if details else str(rule)


def _summary(escalation: Escalation, last_reply_at: datetime | None) -> EscalationSummary:
    return EscalationSummary(
        id=escalation.id,
        conversation_id=escalation.conversation_id,
        channel=escalation.channel,
        reason=escalation.reason,
        urgency=escalation.urgency,
        status=escalation.status,
        guard_rule=_guard_rule(escalation.guard_reason),
        language=escalation.language,
        created_at=as_utc(escalation.created_at),
        updated_at=as_utc(escalation.updated_at),
        resolved_at=as_utc(escalation.resolved_at),
        last_patient_message_at=as_utc(escalation.last_patient_message_at),
        last_reply_at=as_utc(last_reply_at),
        assigned_to=_ref(escalation.assigned_to),
        resolved_by=_ref(escalation.resolved_by),
    )


def _note(note: EscalationNote) -> NoteView:
    return NoteView(note.id, _ref(note.author), note.text, as_utc(note.created_at))


def _reply(reply: StaffReply) -> ReplyView:
    return ReplyView(
        reply.id,
        _ref(reply.author),
        reply.text,
        reply.status,
        reply.error,
        as_utc(reply.created_at),
        as_utc(reply.delivered_at),
    )


def _last_reply_at(session: Session, escalation_id: int) -> datetime | None:
    return session.execute(
        select(func.max(StaffReply.created_at)).where(StaffReply.escalation_id == escalation_id)
    ).scalar_one_or_none()


def _load(session: Session, escalation_id: int, *, for_update: bool = False) -> Escalation:
    if not isinstance(escalation_id, int) or not 0 < escalation_id <= MAX_ID:
        raise NotFound("No such escalation.")
    query = select(Escalation).where(Escalation.id == escalation_id)
    if for_update:
        query = query.with_for_update()
    escalation = session.execute(query).scalar_one_or_none()
    if escalation is None:
        raise NotFound("No such escalation.")
    return escalation


def _fresh_summary(session: Session, escalation: Escalation) -> EscalationSummary:
    session.flush()
    session.refresh(escalation)
    return _summary(escalation, _last_reply_at(session, escalation.id))


def _detail(via: str, extra: str | None = None) -> str:
    return f"{extra}; via {via}" if extra else f"via {via}"


def validate_text(text: Any, what: str = "Reply") -> str:
    """The text of a reply or note, cleaned up (line ends, surrounding space).

    Raises:
        InvalidText: not a string, empty, longer than :data:`TEXT_LIMIT` or with control characters.
    """
    if not isinstance(text, str):
        raise InvalidText(f"{what} text must be a string.")
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not cleaned:
        raise InvalidText(f"{what} is empty: write something first.")
    if len(cleaned) > TEXT_LIMIT:
        raise InvalidText(f"{what} is too long: {len(cleaned):,} characters, at most {TEXT_LIMIT:,}.")
    if _CONTROL.search(cleaned):
        raise InvalidText(f"{what} contains control characters that cannot be sent.")
    return cleaned


# ------------------------------------------------------------------ reading


def list_escalations(
    *,
    status: str = "open",
    filter: str = "all",  # noqa: A002 - the API's word
    user: StaffMember | None = None,
    database_url: str | None = None,
    limit: int | None = PAGE_SIZE,
) -> list[EscalationSummary]:
    """Escalations for the inbox, the first ``limit`` of them (None: all; the CLI lists them all).

    Same arguments as :func:`page_escalations`; see it for the order.
    """
    query = _listing(status, filter, user)
    if limit is not None:
        query = query.limit(max(1, limit))
    with session_scope(database_url) as session:
        return [_summary(escalation, last) for escalation, last in session.execute(query)]


def page_escalations(
    *,
    status: str = "open",
    filter: str = "all",  # noqa: A002 - the API's word
    user: StaffMember | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    database_url: str | None = None,
) -> EscalationPage:
    """One page of the inbox, and the cursor of the next one.

    Open escalations come urgent first, then oldest first; resolved ones latest resolved first;
    ties by id. The cursor holds the position of the last row shown (keyset paging), so rows
    arriving or leaving meanwhile never make a page repeat or skip the others: a new escalation
    shows on the next page when it sorts after the cursor, and on the first page otherwise.

    Args:
        status: ``open`` or ``resolved``.
        filter: ``all``, ``mine`` (assigned to ``user``) or ``unassigned``.
        user: the staff member asking (needed for ``mine``).
        cursor: the ``next_cursor`` of the previous page (None: the first page).
        limit: rows per page (1 to :data:`PAGE_SIZE`).
        database_url: overrides ``CLINIC_DATABASE_URL``.

    Raises:
        ValueError: unknown status or filter, ``mine`` without a user, or a limit out of range.
        InvalidCursor: the cursor was not made by this listing.
    """
    if not 1 <= limit <= PAGE_SIZE:
        raise ValueError(f"limit must be from 1 to {PAGE_SIZE}")
    query = _listing(status, filter, user)
    if cursor is not None:
        query = query.where(_after(status, cursor))
    with session_scope(database_url) as session:
        rows = [_summary(escalation, last) for escalation, last in session.execute(query.limit(limit + 1))]
    more = len(rows) > limit
    rows = with_activity(rows[:limit])
    return EscalationPage(rows, _cursor(status, rows[-1]) if more else None)


def with_activity(rows: list[EscalationSummary]) -> list[EscalationSummary]:
    """The rows with the start of their latest patient message and the count since the last staff
    reply, read from the tracker store for the whole page at once.

    Nobody has replied yet: the count is of the messages since the escalation opened, the one that
    escalated included. A resolved row's preview is the latest message until it was resolved (and
    its count 0). A tracker store that cannot be read leaves the rows without (logged, no text).
    """
    if not rows:
        return rows
    windows = [
        ActivityWindow(
            key=row.id,
            conversation_id=row.conversation_id,
            since=row.last_reply_at or row.created_at,
            until=row.resolved_at if row.status == "resolved" else None,
            count_trigger=row.last_reply_at is None,
        )
        for row in rows
    ]
    try:
        found = services.patient_activity(windows)
    except Exception as exc:  # noqa: BLE001 - previews are informative: the inbox still lists the rows
        logger.warning("inbox previews unavailable (%s)", type(exc).__name__)
        return rows
    return [_with(row, found.get(row.id)) for row in rows]


def _with(row: EscalationSummary, activity: PatientActivity | None) -> EscalationSummary:
    if activity is None:
        return row
    return replace(row, preview=activity.preview, since_reply=activity.since_count if row.status == "open" else 0)


def record_listing(rows: list[EscalationSummary], user: StaffMember, *, via: str = "console",
                   database_url: str | None = None) -> None:
    """Audits a listing that showed patient text (previews); one without any is not recorded."""
    shown = [row.id for row in rows if row.preview]
    if not shown:
        return
    ids = ", ".join(str(escalation_id) for escalation_id in shown[:MAX_IDS_IN_DETAIL])
    more = f" and {len(shown) - MAX_IDS_IN_DETAIL} more" if len(shown) > MAX_IDS_IN_DETAIL else ""
    audit.record(database_url, user, "inbox_view", None, _detail(via, f"previews of {ids}{more}"))


def _listing(status: str, filter: str, user: StaffMember | None) -> Select:  # noqa: A002
    """The inbox's query: escalations of a status and filter, in the inbox's order."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {', '.join(FILTERS)}")
    query = _with_last_reply().where(Escalation.status == status)
    if filter == "mine":
        if user is None:
            raise ValueError("filter 'mine' needs the user")
        query = query.where(Escalation.assigned_to_id == user.id)
    elif filter == "unassigned":
        query = query.where(Escalation.assigned_to_id.is_(None))
    if status == "open":
        return query.order_by(_urgency_rank(), Escalation.created_at, Escalation.id)
    return query.order_by(Escalation.resolved_at.desc(), Escalation.id.desc())


# A cursor is the sort key of the last row shown: "o.<rank>.<created, µs since 1970>.<id>" for
# open escalations, "r.<resolved, µs>.<id>" for resolved ones, in URL-safe base64.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_LAST_MICROS = (datetime(9999, 12, 31, tzinfo=timezone.utc) - _EPOCH) // _MICROSECOND
_CURSOR = re.compile(r"^(?:o\.[01]|r)\.\d{1,19}\.\d{1,10}$")


def _urgency_rank() -> ColumnElement[int]:
    return case((Escalation.urgency == "urgent", 0), else_=1)


def _cursor(status: str, row: EscalationSummary) -> str:
    if status == "open":
        key = f"o.{0 if row.urgency == 'urgent' else 1}.{(row.created_at - _EPOCH) // _MICROSECOND}.{row.id}"
    else:
        key = f"r.{((row.resolved_at or row.created_at) - _EPOCH) // _MICROSECOND}.{row.id}"
    return base64.urlsafe_b64encode(key.encode("ascii")).decode("ascii").rstrip("=")


def _after(status: str, cursor: str) -> ColumnElement[bool]:
    """The rows after the cursor's position in the listing of ``status``."""
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        key = ""
    if len(cursor) > 80 or not _CURSOR.match(key) or key.startswith("o") != (status == "open"):
        raise InvalidCursor("This page link is not valid (any more): start again from the first page.")
    *rank, micros, last_id = key.split(".")[1:]
    if int(micros) > _LAST_MICROS or int(last_id) > MAX_ID:
        raise InvalidCursor("This page link is not valid (any more): start again from the first page.")
    moment = _EPOCH + int(micros) * _MICROSECOND
    if status == "open":
        row_rank = _urgency_rank()
        same_rank = row_rank == int(rank[0])
        return or_(
            row_rank > int(rank[0]),
            and_(same_rank, Escalation.created_at > moment),
            and_(same_rank, Escalation.created_at == moment, Escalation.id > int(last_id)),
        )
    return or_(
        Escalation.resolved_at < moment,
        and_(Escalation.resolved_at == moment, Escalation.id < int(last_id)),
    )


def find_escalations(
    text: str,
    user: StaffMember,
    *,
    by: str = "any",
    via: str = "console",
    database_url: str | None = None,
    limit: int = FIND_LIMIT,
) -> list[EscalationSummary]:
    """Escalations of one patient, or about something, open first then latest first, recorded in the audit log.

    A phone number is read with ``phonenumbers`` (US numbers without the country code) and
    finds the SMS conversation of that number (also as a Twilio address, ``whatsapp:+1...``)
    and every conversation whose booking or booking request gave that number.

    Other text (``by="any"``) finds the conversation with that id, the conversations of a
    booking or booking request with that booking code (typed any way) or with the text in its
    name, and escalations with the text in a patient message they recorded (the one that
    escalated, and those sent while staff held the conversation); names and messages are
    searched from :data:`MIN_SEARCH` characters, ignoring case.

    Args:
        text: a conversation id, a phone number, a name, a booking code or words, as typed.
        user: the staff member asking.
        by: ``conversation`` (the exact conversation id), ``phone``, or ``any`` (the conversation
            id, and the phone number when ``text`` is one, or else the booking code, name and text).
        via: ``console`` or ``api`` (for the audit log).
        database_url: overrides ``CLINIC_DATABASE_URL``.
        limit: at most this many.

    Raises:
        InvalidQuery: empty or too long, or ``by="phone"`` and not a phone number.
    """
    if by not in FIND_BY:
        raise ValueError(f"by must be one of {', '.join(FIND_BY)}")
    cleaned = (text or "").strip()
    if not cleaned or len(cleaned) > MAX_QUERY or _CONTROL.search(cleaned):
        raise InvalidQuery(
            f"Type a conversation id, a phone number, a name, a booking code or words of a message (at most "
            f"{MAX_QUERY} characters)."
        )
    phone = _phone_number(cleaned) if by != "conversation" else None
    if by == "phone" and phone is None:
        raise InvalidQuery("That is not a phone number the clinic can read (for example +1 312 555 0123).")
    where, kind = _of_patient(None if by == "phone" else cleaned, phone), "phone" if phone else "conversation id"
    if phone is None and by == "any":
        where, kind = or_(where, _mentioning(cleaned)), "conversation id, name, booking code or text"
    query = (
        _with_last_reply()
        .where(where)
        .order_by((Escalation.status == "open").desc(), Escalation.created_at.desc(), Escalation.id.desc())
        .limit(max(1, limit))
    )
    with session_scope(database_url) as session:
        rows = [_summary(escalation, last) for escalation, last in session.execute(query)]
        ids = ", ".join(str(row.id) for row in rows[:MAX_IDS_IN_DETAIL])
        detail = f"by {kind}: {len(rows)} found{f' ({ids})' if ids else ''}"
        # the words typed are kept only when they are an id or a number: a name or message text is patient data
        by_id = by == "conversation" or any(row.conversation_id == cleaned for row in rows)
        looked_up = phone or (cleaned if by_id else None)
        audit.record(session, user, "find", rows[0] if len(rows) == 1 else None, _detail(via, detail),
                     conversation_id=looked_up)
    return with_activity(rows)


def _mentioning(text: str) -> ColumnElement[bool]:
    """Escalations of a booking code, or with ``text`` in a booking's name or a recorded patient message."""
    codes = code_candidates(text)[:5]
    found = [
        Escalation.conversation_id.in_(select(model.conversation_id).where(model.code.in_(codes)))
        for model in (Booking, BookingRequest)
    ] if codes else []
    if len(text) >= MIN_SEARCH:
        needle = text.lower()
        found += [
            Escalation.conversation_id.in_(
                select(model.conversation_id).where(func.lower(model.full_name).contains(needle, autoescape=True))
            )
            for model in (Booking, BookingRequest)
        ]
        found += [
            func.lower(Escalation.trigger_text).contains(needle, autoescape=True),
            Escalation.id.in_(
                select(EscalationMessage.escalation_id)
                .where(func.lower(EscalationMessage.text).contains(needle, autoescape=True))
            ),
        ]
    return or_(*found) if found else false()


def _phone_number(text: str) -> str | None:
    """``text`` in E.164 when it is a phone number and nothing else (not an id with digits in it)."""
    return normalize_phone(text) if _PHONE_TEXT.match(text) else None


def _of_patient(conversation_id: str | None, phone: str | None) -> ColumnElement[bool]:
    """Escalations of this conversation id, or of conversations with this phone number (E.164)."""
    ids = [conversation_id] if conversation_id is not None else []
    if phone is None:
        return Escalation.conversation_id.in_(ids)
    ids += [phone, *(f"{scheme}:{phone}" for scheme in _TWILIO_SCHEMES)]
    return or_(
        Escalation.conversation_id.in_(ids),
        Escalation.conversation_id.in_(select(Booking.conversation_id).where(Booking.phone == phone)),
        Escalation.conversation_id.in_(select(BookingRequest.conversation_id).where(BookingRequest.phone == phone)),
    )


def _with_last_reply() -> Select:
    """Escalations with when staff last replied (the inbox's rows), assignee and resolver loaded."""
    last_reply = (
        select(StaffReply.escalation_id, func.max(StaffReply.created_at).label("last_reply_at"))
        .group_by(StaffReply.escalation_id)
        .subquery()
    )
    return (
        select(Escalation, last_reply.c.last_reply_at)
        .outerjoin(last_reply, last_reply.c.escalation_id == Escalation.id)
        .options(selectinload(Escalation.assigned_to), selectinload(Escalation.resolved_by))
    )


def counts(user: StaffMember, *, database_url: str | None = None) -> dict[str, int]:
    """How many open escalations there are: ``all``, ``mine`` and ``unassigned``."""
    query = select(
        func.count(Escalation.id),
        func.coalesce(func.sum(case((Escalation.assigned_to_id == user.id, 1), else_=0)), 0),
        func.coalesce(func.sum(case((Escalation.assigned_to_id.is_(None), 1), else_=0)), 0),
    ).where(Escalation.status == "open")
    with session_scope(database_url) as session:
        total, mine, unassigned = session.execute(query).one()
    return {"all": int(total), "mine": int(mine), "unassigned": int(unassigned)}


def get_escalation(escalation_id: int, *, database_url: str | None = None) -> EscalationDetail:
    """An escalation with its messages, notes and replies (no audit event: see :func:`view`).

    Raises:
        NotFound: no such escalation.
    """
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id)
        notes = session.execute(
            select(EscalationNote)
            .options(selectinload(EscalationNote.author))
            .where(EscalationNote.escalation_id == escalation.id)
            .order_by(EscalationNote.id)
        ).scalars()
        replies = session.execute(
            select(StaffReply)
            .options(selectinload(StaffReply.author))
            .where(StaffReply.escalation_id == escalation.id)
            .order_by(StaffReply.id)
        ).scalars()
        return EscalationDetail(
            summary=_summary(escalation, _last_reply_at(session, escalation.id)),
            trigger_text=escalation.trigger_text,
            messages=[
                PatientMessage(m.id, m.message_id, m.reason, m.text, as_utc(m.created_at))
                for m in escalation.messages
            ],
            notes=[_note(note) for note in notes],
            replies=[_reply(reply) for reply in replies],
        )


def view(
    escalation_id: int, user: StaffMember, *, via: str = "console", database_url: str | None = None
) -> EscalationDetail:
    """:func:`get_escalation`, recorded in the audit log as a view.

    Raises:
        NotFound: no such escalation.
    """
    detail = get_escalation(escalation_id, database_url=database_url)
    audit.record(database_url, user, "view", detail.summary, _detail(via))
    return detail


def transcript(conversation_id: str, after_id: int = 0) -> TranscriptResult:
    """The conversation's transcript from Rasa's tracker store (entries after ``after_id``).

    A tracker store that cannot be read gives an empty list and the reason, not an exception:
    the console still shows what the clinic database holds.
    """
    try:
        return TranscriptResult(list(services.read_transcript(conversation_id, after_id=after_id)))
    except Exception as exc:  # noqa: BLE001 - any failure means "transcript unavailable"
        logger.warning("transcript of an escalated conversation unavailable (%s)", type(exc).__name__)
        return TranscriptResult([], f"The conversation history could not be read ({type(exc).__name__}).")


def notifications_for(escalation_id: int, *, database_url: str | None = None) -> list[NotificationStatus]:
    """Staff notifications sent (or failing) for an escalation; empty when they cannot be read."""
    try:
        return list(services.list_notifications(escalation_id, database_url=database_url))
    except Exception as exc:  # noqa: BLE001 - notifications are informative here
        logger.warning("notifications of escalation %s unavailable (%s)", escalation_id, type(exc).__name__)
        return []


def sms_opted_out(summary: EscalationSummary, *, database_url: str | None = None) -> bool | None:
    """Whether the patient of an SMS conversation opted out of texts (replied STOP).

    On SMS (channel ``twilio``) the conversation id is the patient's E.164 number. None when the
    conversation is not on SMS, or when the state cannot be read (logged without the number):
    a reply is then still checked, and refused if need be, by :mod:`clinic.rasa_api`.
    """
    if summary.channel != SMS_CHANNEL:
        return None
    try:
        return bool(services.is_opted_out(summary.conversation_id, database_url=database_url))
    except Exception as exc:  # noqa: BLE001 - informative here; the reply path checks again
        logger.warning("SMS opt-out state of escalation %s unavailable (%s)", summary.id, type(exc).__name__)
        return None


def failing_notifications(*, database_url: str | None = None) -> list[NotificationStatus]:
    """Staff notifications that keep failing (for the inbox banner); empty when they cannot be read."""
    try:
        return list(services.failing_notifications(database_url=database_url))
    except Exception as exc:  # noqa: BLE001 - the banner is informative
        logger.warning("failing notifications unavailable (%s)", type(exc).__name__)
        return []


# ------------------------------------------------------------------ changes


def claim(
    escalation_id: int,
    user: StaffMember,
    *,
    take_over: bool = False,
    via: str = "console",
    database_url: str | None = None,
) -> EscalationSummary:
    """Assigns an open escalation to ``user`` (idempotent for the current assignee).

    Args:
        escalation_id: the escalation.
        user: who claims it.
        take_over: claim it even when someone else has.
        via: ``console`` or ``api`` (for the audit log).
        database_url: overrides ``CLINIC_DATABASE_URL``.

    Raises:
        NotFound: no such escalation.
        Conflict: it is resolved, or claimed by someone else and ``take_over`` is False.
    """
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id, for_update=True)
        if escalation.status != "open":
            raise Conflict("This conversation is resolved.")
        previous = escalation.assigned_to
        if previous is not None and previous.id == user.id:
            return _fresh_summary(session, escalation)
        if previous is not None and not take_over:
            raise Conflict(f"Already claimed by {previous.display_name}.", reason="claimed")
        escalation.assigned_to_id = user.id
        escalation.updated_at = utcnow()
        extra = f"taken over from {previous.username}" if previous is not None else None
        audit.record(session, user, "claim", escalation, _detail(via, extra))
        return _fresh_summary(session, escalation)


def unassign(
    escalation_id: int, user: StaffMember, *, via: str = "console", database_url: str | None = None
) -> EscalationSummary:
    """Puts an open escalation back in the unassigned queue (a no-op when nobody has it).

    Raises:
        NotFound: no such escalation.
        Conflict: it is resolved.
    """
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id, for_update=True)
        if escalation.status != "open":
            raise Conflict("This conversation is resolved.")
        previous = escalation.assigned_to
        if previous is None:
            return _fresh_summary(session, escalation)
        escalation.assigned_to_id = None
        escalation.updated_at = utcnow()
        extra = None if previous.id == user.id else f"was {previous.username}"
        audit.record(session, user, "unassign", escalation, _detail(via, extra))
        return _fresh_summary(session, escalation)


def add_note(
    escalation_id: int, user: StaffMember, text: Any, *, via: str = "console", database_url: str | None = None
) -> NoteView:
    """Adds an internal note (never sent to the patient), open or resolved.

    Raises:
        InvalidText: empty, too long or not text.
        NotFound: no such escalation.
    """
    cleaned = validate_text(text, "Note")
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id)
        note = EscalationNote(escalation_id=escalation.id, author_id=user.id, text=cleaned)
        session.add(note)
        session.flush()
        audit.record(session, user, "note", escalation, _detail(via, f"note {note.id}"))
        session.refresh(note)
        return _note(note)


def reply(
    escalation_id: int, user: StaffMember, text: Any, *, via: str = "console", database_url: str | None = None
) -> ReplyView:
    """Sends a reply to the patient and records its delivery.

    The reply is stored as ``sending`` (and an unassigned escalation is claimed by the
    sender) before Rasa is called, then marked ``delivered`` or ``failed`` with the reason.

    Returns:
        The reply; ``status == "failed"`` and ``error`` when delivery failed.

    Raises:
        InvalidText: empty, too long or not text.
        NotFound: no such escalation.
        Conflict: the escalation is resolved (the assistant has the conversation again).
    """
    cleaned = validate_text(text, "Reply")
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id, for_update=True)
        if escalation.status != "open":
            raise Conflict("This conversation is resolved: the assistant has it again.")
        if escalation.assigned_to_id is None:
            escalation.assigned_to_id = user.id
            audit.record(session, user, "claim", escalation, _detail(via, "by replying"))
        row = StaffReply(escalation_id=escalation.id, author_id=user.id, text=cleaned, status="sending")
        session.add(row)
        escalation.updated_at = utcnow()
        session.flush()
        reply_id, conversation_id = row.id, escalation.conversation_id
    ok, error = _deliver(conversation_id, cleaned, user.display_name, database_url)
    with session_scope(database_url) as session:
        row = session.get(StaffReply, reply_id)
        escalation = session.get(Escalation, escalation_id)
        row.status = "delivered" if ok else "failed"
        row.error = None if ok else (error or "delivery failed")[:500]
        row.delivered_at = utcnow() if ok else None
        outcome = f"reply {reply_id} delivered" if ok else f"reply {reply_id} failed: {row.error}"
        audit.record(session, user, "reply", escalation, _detail(via, outcome))
        session.flush()
        session.refresh(row)
        result = _reply(row)
    logger.info("staff reply %s on escalation %s: %s", reply_id, escalation_id, result.status)
    return result


def resolve(
    escalation_id: int, user: StaffMember, *, via: str = "console", database_url: str | None = None
) -> ResolveResult:
    """Hands the conversation back to the assistant and, when that worked, marks it resolved.

    Returns:
        ``ok`` True and the resolved escalation; or ``ok`` False, the reason, and the
        escalation still open (staff can retry).

    Raises:
        NotFound: no such escalation.
        Conflict: it is resolved already.
    """
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id)
        if escalation.status != "open":
            raise Conflict("This conversation is resolved already.")
        conversation_id = escalation.conversation_id
    ok, error = _hand_back(conversation_id)
    with session_scope(database_url) as session:
        escalation = _load(session, escalation_id)
        if not ok:
            audit.record(session, user, "resolve_failed", escalation, _detail(via, error))
            return ResolveResult(False, error, _fresh_summary(session, escalation))
        now = utcnow()
        changed = session.execute(
            update(Escalation)
            .where(Escalation.id == escalation_id, Escalation.status == "open")
            .values(status="resolved", resolved_at=now, resolved_by_id=user.id, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not changed:
            raise Conflict("This conversation is resolved already.")
        audit.record(session, user, "resolve", escalation, _detail(via))
        return ResolveResult(True, None, _fresh_summary(session, escalation))


# ------------------------------------------------------------------ delivery (clinic.rasa_api)


def _deliver(conversation_id: str, text: str, staff_name: str, database_url: str | None) -> tuple[bool, str | None]:
    """Sends the reply (``database_url`` is where :mod:`clinic.rasa_api` reads the SMS opt-outs)."""
    try:
        delivery = services.send_staff_reply(conversation_id, text, staff_name=staff_name, database_url=database_url)
    except Exception as exc:  # noqa: BLE001 - it should not raise; if it does, the reply failed
        logger.warning("staff reply delivery raised %s", type(exc).__name__)
        return False, f"internal error ({type(exc).__name__})"
    return (True, None) if delivery.ok else (False, delivery.error or "delivery failed")


def _hand_back(conversation_id: str) -> tuple[bool, str | None]:
    try:
        delivery = services.hand_back(conversation_id)
    except Exception as exc:  # noqa: BLE001 - it should not raise; if it does, hand-back failed
        logger.warning("hand-back raised %s", type(exc).__name__)
        return False, f"internal error ({type(exc).__name__})"
    return (True, None) if delivery.ok else (False, delivery.error or "hand-back failed")

"""What the clinic already knows about the patient of an escalation, for the conversation page.

Staff answering a patient want their bookings and earlier escalations at hand without a search.
The patient is found by phone number: on SMS the conversation id is the number; on the website,
the number given in a booking or booking request made in this conversation. Bookings and
escalations of the same number (other conversations included) are the patient's, as the
bookings page and the inbox's search already treat them. Reading is not audited here: the
caller's view of the escalation is (:func:`clinic.staff.inbox.view`), or :func:`view` for the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.expression import ColumnElement

from clinic.booking.service import BookingView, RequestView
from clinic.channels import SMS_CHANNEL
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, BookingRequest, Escalation, StaffReply, session_scope
from clinic.staff import audit
from clinic.staff.accounts import StaffMember
from clinic.staff.inbox import NotFound, StaffRef
from clinic.staff.patient_notes import sms_phone

LIMIT = 20  # of each list: the page is a glance, the bookings page and the inbox search have the rest
_TWILIO_SCHEMES = ("whatsapp", "sms", "mms", "tel", "rcs")


@dataclass(frozen=True)
class EarlierEscalation:
    """Another escalation of the same patient and how it ended."""

    id: int
    conversation_id: str
    channel: str
    reason: str
    urgency: str
    status: str  # open | resolved
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: StaffRef | None
    replies: int  # staff replies delivered to the patient

    @property
    def outcome(self) -> str:
        """In words: "Open", "Resolved by Dana Ruiz, 2 replies", "Resolved without a reply"."""
        if self.status != "resolved":
            return "Open"
        by = f" by {self.resolved_by.display_name}" if self.resolved_by else ""
        replies = f"{self.replies} {'reply' if self.replies == 1 else 'replies'}" if self.replies else "no reply"
        return f"Resolved{by}, {replies}"


@dataclass(frozen=True)
class PatientContext:
    """A patient's bookings, booking requests awaiting staff and other escalations.

    ``phones`` are the numbers the patient was matched by (empty: only this conversation).
    """

    phones: list[str]
    upcoming: list[BookingView]
    past: list[BookingView]
    requests: list[RequestView]
    escalations: list[EarlierEscalation]


def patient_phones(session: Session, conversation_id: str, channel: str) -> list[str]:
    """The patient's numbers: the SMS sender's, or those given in this conversation's bookings."""
    phone = sms_phone(conversation_id) if channel == SMS_CHANNEL else None
    if phone is not None:
        return [phone]
    given = session.execute(
        select(Booking.phone).where(Booking.conversation_id == conversation_id)
        .union(select(BookingRequest.phone).where(BookingRequest.conversation_id == conversation_id))
    ).scalars()
    return sorted({number for number in given if number})


def _conversations(phones: list[str], conversation_id: str) -> ColumnElement[bool]:
    """Escalations of this conversation, of the numbers' SMS conversations, or of conversations
    whose bookings gave one of the numbers."""
    ids = [conversation_id, *phones, *(f"{scheme}:{phone}" for phone in phones for scheme in _TWILIO_SCHEMES)]
    if not phones:
        return Escalation.conversation_id.in_(ids)
    return or_(
        Escalation.conversation_id.in_(ids),
        Escalation.conversation_id.in_(select(Booking.conversation_id).where(Booking.phone.in_(phones))),
        Escalation.conversation_id.in_(select(BookingRequest.conversation_id).where(BookingRequest.phone.in_(phones))),
    )


def _bookings(session: Session, phones: list[str], conversation_id: str, now: datetime) -> tuple[list, list]:
    mine = or_(Booking.conversation_id == conversation_id, Booking.phone.in_(phones))
    upcoming = session.execute(
        select(Booking).where(mine, Booking.starts_at >= now).order_by(Booking.starts_at, Booking.id).limit(LIMIT)
    ).scalars()
    past = session.execute(
        select(Booking).where(mine, Booking.starts_at < now).order_by(Booking.starts_at.desc(), Booking.id.desc())
        .limit(LIMIT)
    ).scalars()
    return [BookingView.of(row) for row in upcoming], [BookingView.of(row) for row in past]


def _requests(session: Session, phones: list[str], conversation_id: str) -> list[RequestView]:
    rows = session.execute(
        select(BookingRequest)
        .where(or_(BookingRequest.conversation_id == conversation_id, BookingRequest.phone.in_(phones)),
               BookingRequest.status == "requested")
        .order_by(BookingRequest.created_at, BookingRequest.id)
        .limit(LIMIT)
    ).scalars()
    return [RequestView.of(row) for row in rows]


def _escalations(session: Session, escalation: Escalation, phones: list[str]) -> list[EarlierEscalation]:
    replies = (
        select(StaffReply.escalation_id, func.count(StaffReply.id).label("replies"))
        .where(StaffReply.status == "delivered")
        .group_by(StaffReply.escalation_id)
        .subquery()
    )
    query = (
        select(Escalation, func.coalesce(replies.c.replies, 0))
        .outerjoin(replies, replies.c.escalation_id == Escalation.id)
        .options(selectinload(Escalation.resolved_by))
        .where(_conversations(phones, escalation.conversation_id), Escalation.id != escalation.id)
        .order_by(Escalation.created_at.desc(), Escalation.id.desc())
        .limit(LIMIT)
    )
    found = []
    for row, count in session.execute(query):
        by = row.resolved_by
        found.append(EarlierEscalation(
            id=row.id, conversation_id=row.conversation_id, channel=row.channel, reason=row.reason,
            urgency=row.urgency, status=row.status, created_at=as_utc(row.created_at),
            resolved_at=as_utc(row.resolved_at) if row.resolved_at else None,
            resolved_by=StaffRef(by.id, by.username, by.display_name) if by is not None else None,
            replies=int(count),
        ))
    return found


def _load(session: Session, escalation_id: int, now: datetime) -> tuple[Escalation, PatientContext]:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"No escalation {escalation_id}.")
    phones = patient_phones(session, escalation.conversation_id, escalation.channel)
    upcoming, past = _bookings(session, phones, escalation.conversation_id, now)
    context = PatientContext(
        phones=phones, upcoming=upcoming, past=past,
        requests=_requests(session, phones, escalation.conversation_id),
        escalations=_escalations(session, escalation, phones),
    )
    return escalation, context


def context_for(escalation_id: int, *, database_url: str | None = None, now: datetime | None = None) -> PatientContext:
    """The patient context of an escalation (not audited: the page's view of the escalation is).

    Raises:
        NotFound: no such escalation.
    """
    with session_scope(database_url) as session:
        return _load(session, escalation_id, as_utc(now) or utcnow())[1]


def view(
    escalation_id: int, user: StaffMember, *, via: str = "api", database_url: str | None = None,
    now: datetime | None = None,
) -> PatientContext:
    """:func:`context_for`, recorded in the audit log as a view of the escalation (ids only).

    Raises:
        NotFound: no such escalation.
    """
    with session_scope(database_url) as session:
        escalation, context = _load(session, escalation_id, as_utc(now) or utcnow())
        bookings = [b.id for b in (*context.upcoming, *context.past)]
        detail = (f"patient context: bookings {', '.join(map(str, bookings)) or 'none'}, "
                  f"{len(context.escalations)} other escalation(s); via {via}")
        audit.record(session, user, "view", escalation, detail)
        return context

"""Booking consultations: the service the chat and the staff console use.

* Patients' answers to the booking questions, in English or Spanish, read deterministically
  (:func:`read_yes_no`, :func:`read_visit_reason`, :func:`read_slot_choice`...; word lists in
  ``clinic/booking/scheduling/answers.yml``). Accents are ignored: texts often come without them.
* Up to three open slots closest to a preferred time (:func:`offers`), from the scheduling
  backend chosen in clinic.yml (:mod:`clinic.booking.scheduling`).
* Booking (:func:`book`), moving (:func:`reschedule`) and cancelling (:func:`cancel`) with a
  fallback: when the backend is down or fails, a request for staff is stored instead, so
  nothing the patient entered is lost. A time someone else took first gives new offers.
* Finding a patient's booking by phone number and booking code (:func:`find_appointment`).
* For the staff console: :func:`list_bookings`, :func:`list_requests`, :func:`confirm_request`,
  :func:`cancel_request` and :func:`cancel_booking`.

Contact details and visit reasons are stored for staff and never logged.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clinic.booking.scheduling import (
    Appointment,
    BookingDraft,
    Scheduler,
    SchedulerError,
    SchedulerUnavailable,
    Slot,
    SlotTaken,
    code_candidates,
    get_scheduler,
)
from clinic.booking.scheduling.records import (
    add_request,
    booking_appointment,
    draft_of_booking,
    find,
    request_appointment,
)
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, BookingRequest, session_scope
from clinic.profile import ClinicProfile

logger = logging.getLogger(__name__)

ANSWERS_PATH = Path(__file__).resolve().parent / "scheduling" / "answers.yml"
OFFER_COUNT = 3
SEARCH_BEFORE = timedelta(days=2)  # offers may be a little earlier than asked for...
SEARCH_AFTER = timedelta(days=14)  # ...or up to two weeks later (then: anywhere in the horizon)
OTHER_REASON = "other"


class BookingError(ValueError):
    """A staff action that does not apply (no such record, or not in a state that allows it)."""


# ------------------------------------------------------------------ reading answers


@lru_cache(maxsize=1)
def answer_words() -> dict[str, Any]:
    """``clinic/booking/scheduling/answers.yml`` (read once)."""
    return yaml.safe_load(ANSWERS_PATH.read_text(encoding="utf-8"))


def normalize(text: str) -> str:
    """Lower case without accents ("sí" is "si"), curly quotes straightened, punctuation (but ' # / : -)
    dropped, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower().replace("\u2019", "'")
    text = re.sub(r"[^\w\s'#/:-]", " ", text)
    return " ".join(text.split())


def _has_phrase(text: str, phrases: Iterable[Any]) -> bool:
    """Whether the normalized ``text`` holds one of ``phrases`` as whole words."""
    return any(re.search(rf"(?<![\w']){re.escape(normalize(str(p)))}(?![\w'])", text) for p in phrases)


def is_stop(text: str) -> bool:
    """Whether the whole message asks to leave the booking ("never mind", "stop booking")."""
    return normalize(text).strip(" -") in {normalize(p) for p in answer_words()["stop"]}


def read_yes_no(text: str) -> bool | None:
    """True for a yes, False for a no, None otherwise ("yes please", "no thanks", "sí")."""
    words = answer_words()
    norm = normalize(text)
    no = _has_phrase(norm, words["no"]) or norm.startswith(("no ", "not "))
    yes = _has_phrase(norm, words["yes"])
    if yes == no:
        return None
    return yes


def read_skip(text: str) -> bool:
    """Whether the patient would rather not give the optional email."""
    norm = normalize(text)
    words = answer_words()
    return norm in {normalize(p) for p in words["skip"]} or _has_phrase(norm, words["skip_anywhere"])


def read_patient_type(text: str) -> str | None:
    """``new`` or ``returning`` (the question is "Is this your first visit with us?")."""
    norm = normalize(text)
    kinds = answer_words()["patient_type"]
    returning = _has_phrase(norm, kinds["returning"])
    new = _has_phrase(norm, kinds["new"]) and not returning
    if new or returning:
        return "new" if new else "returning"
    answer = read_yes_no(text)
    if answer is None:
        return None
    return "new" if answer else "returning"


def _name_parts(name: str) -> list[str]:
    """A reason's name and the parts of it in and out of brackets: "TEPT (estrés postraumático)"."""
    return [name, *(part.strip() for part in re.split(r"[()]", name) if part.strip())]


def read_visit_reason(text: str, reasons: list[str], names: Mapping[str, str] | None = None) -> str | None:
    """One of the clinic's ``reasons`` (clinic.yml ``conditions_treated``), ``other``, or None.

    A short answer that names none of them is ``other``; a long one or a question is None.

    Args:
        names: other names of the reasons, each to the reason it names (the Spanish of
            clinic.yml's ``spanish.conditions_treated``).
    """
    norm = normalize(text)
    words = answer_words()
    by_lower = {r.lower(): r for r in reasons}
    named = [(reason, reason) for reason in reasons] + [(name, reason) for name, reason in (names or {}).items()
                                                        if reason in reasons]
    for name, reason in sorted(named, key=lambda pair: len(pair[0]), reverse=True):
        if _has_phrase(norm, _name_parts(name)):
            return reason
    for canonical, synonyms in words["reason_words"].items():
        if canonical.lower() in by_lower and _has_phrase(norm, synonyms):
            return by_lower[canonical.lower()]
    vocabulary = {normalize(str(s)): c for c, syns in words["reason_words"].items() for s in syns
                  if c.lower() in by_lower}
    for word in norm.split():
        close = difflib.get_close_matches(word, list(vocabulary), n=1, cutoff=0.84)
        if close and len(word) >= 4:
            return by_lower[vocabulary[close[0]].lower()]
    if _has_phrase(norm, words["other_reason"]):
        return OTHER_REASON
    if norm and len(norm.split()) <= 6 and "?" not in (text or ""):
        return OTHER_REASON
    return None


_CLOCK_RE = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s*m\b\.?|\b(\d{1,2}):(\d{2})\b|\bnoon\b")
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
             "lunes": 0, "martes": 1, "miercoles": 2, "jueves": 3, "viernes": 4, "sabado": 5, "domingo": 6}
_WEEKDAY_RE = re.compile(
    r"\b(?:(mon|tue|wed|thu|fri|sat|sun)[a-z]*|(lunes|martes|miercoles|jueves|viernes|sabado|domingo))\b"
)


def _weekday(text: str) -> int | None:
    """The weekday (0 is Monday) named in a normalized text: "tuesday", "tue", "martes"."""
    match = _WEEKDAY_RE.search(text)
    return _WEEKDAYS[match.group(1) or match.group(2)] if match else None


def read_slot_choice(text: str, offered: list[Slot]) -> int | str | None:
    """Which offered slot the patient picked (its index), ``"other"`` for none of them, or None.

    Reads "2", "the second one", "#3", "option 1", "3:30", "Tuesday at 2pm", "la segunda", "el
    martes a las 2 p. m." and an offered slot's ISO start (a button's payload).
    """
    norm = normalize(text)
    keys = [s.key for s in offered]
    try:
        chosen = as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00"))).isoformat()
        if chosen in keys:
            return keys.index(chosen)
    except ValueError:
        pass
    words = answer_words()
    clock = _CLOCK_RE.search(norm)
    if clock:
        matches = [i for i, s in enumerate(offered) if _clock_matches(clock, s.start)]
        weekday = _weekday(norm)
        if weekday is not None:
            matches = [i for i in matches if offered[i].start.weekday() == weekday]
        if len(matches) == 1:
            return matches[0]
    elif (weekday := _weekday(norm)) is not None and not any(ch.isdigit() for ch in norm):
        matches = [i for i, s in enumerate(offered) if s.start.weekday() == weekday]
        if len(matches) == 1:
            return matches[0]
    tokens = norm.replace("#", " #").split()
    for kind in ("ordinals", "cardinals"):
        numbers = [int(n) for n, forms in words[kind].items() if any(str(f) in tokens for f in forms)]
        if len(numbers) == 1 and numbers[0] <= len(offered) and not clock:
            return numbers[0] - 1
    if _has_phrase(norm, words["other_times"]):
        return "other"
    return None


def _clock_matches(match: re.Match, when: datetime) -> bool:
    if match.group(0) == "noon":
        return (when.hour, when.minute) == (12, 0)
    if match.group(1):
        hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), match.group(3)
        hour = hour % 12 + (12 if meridiem == "p" else 0)
        return (when.hour, when.minute) == (hour, minute)
    hour, minute = int(match.group(4)), int(match.group(5))
    return when.minute == minute and when.hour in (hour, hour + 12)


# ------------------------------------------------------------------ offers


def bookable_window(profile: ClinicProfile, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The earliest and latest bookable start times (clinic.yml's notice and horizon)."""
    now = as_utc(now or utcnow())
    return (now + timedelta(hours=profile.booking.min_notice_hours),
            now + timedelta(days=profile.booking.horizon_days))


def _closest(slots: list[Slot], preferred: datetime, count: int) -> list[Slot]:
    ranked = sorted(slots, key=lambda s: (abs((as_utc(s.start) - as_utc(preferred)).total_seconds()), as_utc(s.start)))
    return sorted(ranked[:count], key=lambda s: as_utc(s.start))


def offers(profile: ClinicProfile, preferred: datetime, *, now: datetime | None = None, exclude: Iterable[str] = (),
           scheduler: Scheduler | None = None, count: int = OFFER_COUNT, database_url: str | None = None) -> list[Slot]:
    """Up to ``count`` open slots closest to ``preferred``, earliest first.

    Looks from two days before to two weeks after the preferred time (inside the bookable
    window), then, if nothing is free there, anywhere in the window.

    Args:
        exclude: slot keys (:attr:`Slot.key`) not to offer (the patient's own booking, a slot
            that was just taken).

    Raises:
        SchedulerError: the backend could not list its slots.
    """
    scheduler = scheduler or get_scheduler(profile)
    earliest, latest = bookable_window(profile, now)
    excluded = set(exclude)
    preferred = max(as_utc(preferred), earliest)
    near = (max(earliest, preferred - SEARCH_BEFORE), min(latest, preferred + SEARCH_AFTER))
    for start, end in (near, (earliest, latest)):
        if start >= end:
            continue
        free = [s for s in scheduler.open_slots(start, end, database_url=database_url) if s.key not in excluded]
        if free:
            return _closest(free, preferred, count)
    return []


# ------------------------------------------------------------------ booking, moving, cancelling


@dataclass(frozen=True)
class Outcome:
    """What happened to a booking, a move or a cancellation.

    Attributes:
        status: ``booked`` (final), ``pending`` (the backend's host confirms it), ``requested``
            (staff confirm: the webhook backend, or a fallback), ``taken`` (choose again from
            ``offers``), ``cancelled``.
        appointment: the booking or request concerned.
        fallback_reason: why a request was stored instead (the backend failed), else None.
        offers: new slots to offer when the time was taken.
    """

    status: str
    appointment: Appointment | None = None
    fallback_reason: str | None = None
    offers: list[Slot] = field(default_factory=list)

    @property
    def is_fallback(self) -> bool:
        return self.fallback_reason is not None


def _scheduler(profile: ClinicProfile, scheduler: Scheduler | None, backend: str | None = None) -> Scheduler:
    """The scheduler given (tests, the console), else the one for ``backend`` (default clinic.yml's)."""
    return scheduler if scheduler is not None else get_scheduler(profile, backend=backend)


def book(draft: BookingDraft, *, profile: ClinicProfile, scheduler: Scheduler | None = None,
         now: datetime | None = None, database_url: str | None = None) -> Outcome:
    """Books the draft's slot with the backend; a request for staff if the backend fails.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the clinic database failed too (nothing was stored).
    """
    earliest, latest = bookable_window(profile, now)
    try:
        chosen = _scheduler(profile, scheduler)
    except SchedulerError as exc:
        logger.error("scheduling backend not usable (%s); storing a request for staff", exc)
        return _fallback(draft, profile.booking.backend, "backend_not_configured", database_url)
    if not earliest <= as_utc(draft.slot.start) <= latest:
        return _taken(profile, chosen, draft.slot, now, database_url, ())
    try:
        placed = chosen.book(draft, database_url=database_url)
    except SlotTaken:
        logger.info("slot taken before it could be booked (backend=%s)", chosen.name)
        return _taken(profile, chosen, draft.slot, now, database_url, ())
    except SchedulerError as exc:
        logger.error("scheduling backend %s failed (%s); storing a request for staff", chosen.name, exc)
        return _fallback(draft, chosen.name, _reason_code(exc), database_url)
    appointment = placed.appointment
    status = {"booked": "booked", "pending": "pending"}.get(appointment.status, "requested")
    return Outcome(status, appointment)


def book_request(draft: BookingDraft, *, profile: ClinicProfile, reason: str,
                 database_url: str | None = None) -> Outcome:
    """A request for staff without asking the backend (it could not list its slots)."""
    return _fallback(draft, profile.booking.backend, reason, database_url)


def _fallback(draft: BookingDraft, backend: str, reason: str, database_url: str | None,
              kind: str = "book", booking_id: int | None = None) -> Outcome:
    appointment = add_request(draft, backend=backend, kind=kind, fallback_reason=reason, booking_id=booking_id,
                              with_code=kind == "book", database_url=database_url)
    return Outcome("requested", appointment, fallback_reason=reason)


def _reason_code(exc: SchedulerError) -> str:
    return "backend_unavailable" if isinstance(exc, SchedulerUnavailable) else "backend_error"


def _taken(profile: ClinicProfile, scheduler: Scheduler, slot: Slot, now: datetime | None,
           database_url: str | None, exclude: Iterable[str]) -> Outcome:
    try:
        new = offers(profile, slot.start, now=now, exclude={slot.key, *exclude}, scheduler=scheduler,
                     database_url=database_url)
    except SchedulerError as exc:
        logger.error("could not list new slots after a taken one (%s)", exc)
        new = []
    return Outcome("taken", offers=new)


def find_appointment(phone: str, code_text: str, *, now: datetime | None = None,
                     database_url: str | None = None) -> Appointment | None:
    """The patient's upcoming booking or open request with this phone and code (typed any way)."""
    for code in code_candidates(code_text)[:5]:
        found = find(phone, code, now=now, database_url=database_url)
        if found is not None:
            return found
    return None


def reschedule(appointment: Appointment, slot: Slot, *, profile: ClinicProfile, scheduler: Scheduler | None = None,
               now: datetime | None = None, database_url: str | None = None,
               preferred_time_text: str | None = None) -> Outcome:
    """Moves a booking (or an open request) to ``slot``; a request for staff if the backend fails.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the clinic database failed.
    """
    earliest, latest = bookable_window(profile, now)
    if appointment.is_request:
        return _move_request(appointment, slot, profile, scheduler, database_url)
    try:
        chosen = _scheduler(profile, scheduler, appointment.backend)
    except SchedulerError as exc:
        logger.error("scheduling backend not usable (%s); storing a reschedule request", exc)
        return _change_request(appointment, "reschedule", slot, "backend_not_configured", database_url,
                               preferred_time_text)
    if not earliest <= as_utc(slot.start) <= latest:
        return _taken(profile, chosen, slot, now, database_url, (_key(appointment),))
    try:
        placed = chosen.reschedule(appointment, slot, database_url=database_url)
    except SlotTaken:
        return _taken(profile, chosen, slot, now, database_url, (_key(appointment),))
    except SchedulerError as exc:
        logger.error("scheduling backend %s failed to move booking %s (%s); storing a request",
                     chosen.name, appointment.id, exc)
        return _change_request(appointment, "reschedule", slot, _reason_code(exc), database_url, preferred_time_text)
    return Outcome(placed.appointment.status if placed.appointment.status in ("booked", "pending") else "requested",
                   placed.appointment)


def request_reschedule(appointment: Appointment, slot: Slot, *, reason: str, preferred_time_text: str | None = None,
                       database_url: str | None = None) -> Outcome:
    """A request for staff to move a booking to ``slot`` (the backend could not list its slots)."""
    return _change_request(appointment, "reschedule", slot, reason, database_url, preferred_time_text)


def _key(appointment: Appointment) -> str:
    return as_utc(appointment.start).isoformat() if appointment.start else ""


def _move_request(appointment: Appointment, slot: Slot, profile: ClinicProfile, scheduler: Scheduler | None,
                  database_url: str | None) -> Outcome:
    if appointment.backend == "webhook":
        try:
            placed = _scheduler(profile, scheduler, "webhook").reschedule(appointment, slot, database_url=database_url)
            return Outcome("requested", placed.appointment)
        except SchedulerError as exc:
            logger.error("webhook backend not usable (%s); changing the request for staff only", exc)
    with session_scope(database_url) as session:
        row = session.get(BookingRequest, appointment.id)
        row.preferred_time, row.status = as_utc(slot.start), "requested"
        session.flush()
        return Outcome("requested", request_appointment(row))


def _change_request(appointment: Appointment, kind: str, slot: Slot | None, reason: str,
                    database_url: str | None, text: str | None = None) -> Outcome:
    with session_scope(database_url) as session:
        row = session.get(Booking, appointment.id)
        draft = draft_of_booking(row, slot, text)
    return _fallback(draft, appointment.backend or "", reason, database_url, kind=kind, booking_id=appointment.id)


def cancel(appointment: Appointment, *, profile: ClinicProfile, by: str = "patient",
           scheduler: Scheduler | None = None, database_url: str | None = None) -> Outcome:
    """Cancels a booking (or an open request); a cancel request for staff if the backend fails.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the clinic database failed.
    """
    if appointment.is_request:
        if appointment.backend == "webhook":
            try:
                _scheduler(profile, scheduler, "webhook").cancel(appointment, by, database_url=database_url)
                return Outcome("cancelled", appointment)
            except SchedulerError as exc:
                logger.error("webhook backend not usable (%s); cancelling the request for staff only", exc)
        _set_request_status(appointment.id, "cancelled", by, database_url)
        return Outcome("cancelled", appointment)
    try:
        _scheduler(profile, scheduler, appointment.backend).cancel(appointment, by, database_url=database_url)
    except SchedulerError as exc:
        logger.error("scheduling backend failed to cancel booking %s (%s); storing a request", appointment.id, exc)
        return _change_request(appointment, "cancel", None, _reason_code(exc), database_url)
    return Outcome("cancelled", appointment)


def _set_request_status(request_id: int, status: str, by: str, database_url: str | None) -> BookingRequest:
    """Cancels an open (or confirmed) request."""
    with session_scope(database_url) as session:
        row = session.get(BookingRequest, request_id)
        if row is None:
            raise BookingError(f"no booking request {request_id}")
        if row.status == "cancelled":
            raise BookingError(f"booking request {request_id} is already cancelled")
        row.status, row.cancelled_at, row.cancelled_by = status, utcnow(), by
        session.flush()
        session.expunge(row)
        return row


# ------------------------------------------------------------------ staff console


@dataclass(frozen=True)
class BookingView:
    """A booking as the staff console lists it (times aware, UTC)."""

    id: int
    code: str
    status: str
    backend: str
    start: datetime
    end: datetime
    chair: int | None
    external_uid: str | None
    full_name: str
    phone: str
    email: str | None
    visit_reason: str | None
    patient_type: str | None
    sms_consent: bool
    channel: str
    conversation_id: str
    created_at: datetime
    cancelled_at: datetime | None
    cancelled_by: str | None

    @classmethod
    def of(cls, row: Booking) -> BookingView:
        return cls(
            id=row.id, code=row.code, status=row.status, backend=row.backend, start=as_utc(row.starts_at),
            end=as_utc(row.ends_at), chair=row.chair, external_uid=row.external_uid, full_name=row.full_name,
            phone=row.phone, email=row.email, visit_reason=row.visit_reason, patient_type=row.patient_type,
            sms_consent=bool(row.sms_consent), channel=row.channel, conversation_id=row.conversation_id,
            created_at=as_utc(row.created_at), cancelled_at=as_utc(row.cancelled_at) if row.cancelled_at else None,
            cancelled_by=row.cancelled_by,
        )


@dataclass(frozen=True)
class RequestView:
    """A booking request as the staff console lists it (times aware, UTC).

    ``kind`` is ``book``, ``reschedule`` or ``cancel`` (the last two concern ``booking_id``);
    ``fallback_reason`` says why the backend did not book it (None for the webhook backend).
    """

    id: int
    code: str | None
    kind: str
    status: str
    backend: str | None
    fallback_reason: str | None
    preferred_time: datetime | None
    preferred_time_text: str | None
    booking_id: int | None
    full_name: str
    phone: str
    email: str | None
    visit_reason: str | None
    patient_type: str | None
    sms_consent: bool | None
    channel: str
    conversation_id: str
    webhook_status: str | None
    created_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None

    @classmethod
    def of(cls, row: BookingRequest) -> RequestView:
        def aware(value: datetime | None) -> datetime | None:
            return as_utc(value) if value is not None else None

        return cls(
            id=row.id, code=row.code, kind=row.kind or "book", status=row.status, backend=row.backend,
            fallback_reason=row.fallback_reason, preferred_time=aware(row.preferred_time),
            preferred_time_text=row.preferred_time_text, booking_id=row.booking_id, full_name=row.full_name,
            phone=row.phone, email=row.email, visit_reason=row.visit_reason, patient_type=row.patient_type,
            sms_consent=row.sms_consent, channel=row.channel, conversation_id=row.conversation_id,
            webhook_status=row.webhook_status, created_at=as_utc(row.created_at), confirmed_at=aware(row.confirmed_at),
            confirmed_by=row.confirmed_by, cancelled_at=aware(row.cancelled_at), cancelled_by=row.cancelled_by,
        )


def list_bookings(*, status: str | None = "booked", start: datetime | None = None, end: datetime | None = None,
                  database_url: str | None = None) -> list[BookingView]:
    """Bookings by start time (``status`` None: every status; ``start``/``end`` bound the start)."""
    query = select(Booking).order_by(Booking.starts_at, Booking.id)
    if status is not None:
        query = query.where(Booking.status == status)
    if start is not None:
        query = query.where(Booking.starts_at >= as_utc(start))
    if end is not None:
        query = query.where(Booking.starts_at < as_utc(end))
    with session_scope(database_url) as session:
        return [BookingView.of(row) for row in session.execute(query).scalars()]


def list_requests(*, status: str | None = "requested", database_url: str | None = None) -> list[RequestView]:
    """Booking requests, oldest first (``status`` None: every status)."""
    query = select(BookingRequest).order_by(BookingRequest.created_at, BookingRequest.id)
    if status is not None:
        query = query.where(BookingRequest.status == status)
    with session_scope(database_url) as session:
        return [RequestView.of(row) for row in session.execute(query).scalars()]


def confirm_request(request_id: int, *, staff: str, start: datetime | None = None,
                    database_url: str | None = None) -> RequestView:
    """Staff confirm a request (having booked it in their system, at ``start`` if it changed).

    A ``reschedule`` or ``cancel`` request also updates the booking it concerns.

    Raises:
        BookingError: no such request, or it is not open; or the new time is taken.
    """
    with session_scope(database_url) as session:
        row = session.get(BookingRequest, request_id)
        if row is None:
            raise BookingError(f"no booking request {request_id}")
        if row.status != "requested":
            raise BookingError(f"booking request {request_id} is {row.status}")
        row.status, row.confirmed_at, row.confirmed_by = "confirmed", utcnow(), staff
        if start is not None:
            row.preferred_time = as_utc(start)
        booking = session.get(Booking, row.booking_id) if row.booking_id else None
        if booking is not None and row.kind == "cancel":
            booking.status, booking.cancelled_at, booking.cancelled_by = "cancelled", utcnow(), staff
        elif booking is not None and row.kind == "reschedule" and row.preferred_time is not None:
            length = as_utc(booking.ends_at) - as_utc(booking.starts_at)
            booking.starts_at, booking.ends_at = as_utc(row.preferred_time), as_utc(row.preferred_time) + length
        try:
            session.flush()
        except IntegrityError:
            raise BookingError("that time is already booked") from None
        view = RequestView.of(row)
    logger.info("booking request %s confirmed by staff", request_id)
    return view


def cancel_request(request_id: int, *, staff: str, database_url: str | None = None) -> RequestView:
    """Staff cancel (decline) an open or confirmed request.

    Raises:
        BookingError: no such request, or it is already cancelled.
    """
    row = _set_request_status(request_id, "cancelled", staff, database_url)
    logger.info("booking request %s cancelled by staff", request_id)
    return RequestView.of(row)


def cancel_booking(booking_id: int, *, staff: str, profile: ClinicProfile,
                   scheduler: Scheduler | None = None, database_url: str | None = None) -> BookingView:
    """Staff cancel a booking, in its backend too (Cal.com) so the time is free again.

    Raises:
        BookingError: no such booking, or it is already cancelled.
        SchedulerError: the backend failed; nothing changed (staff may try again).
    """
    with session_scope(database_url) as session:
        row = session.get(Booking, booking_id)
        if row is None:
            raise BookingError(f"no booking {booking_id}")
        if row.status == "cancelled":
            raise BookingError(f"booking {booking_id} is already cancelled")
        appointment = booking_appointment(row)
    _scheduler(profile, scheduler, appointment.backend).cancel(appointment, staff, database_url=database_url)
    with session_scope(database_url) as session:
        return BookingView.of(session.get(Booking, booking_id))

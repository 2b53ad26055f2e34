"""Bookings in the staff console: upcoming consultations and booking requests awaiting staff.

The page (``/bookings``) and the JSON API (``/api/bookings``, ``/api/booking-requests``) call
the staff functions of :mod:`clinic.booking.service` in the thread pool. Requests come from the
webhook backend (the clinic's own system books them) or from a backend that was down or
failed; staff confirm them once booked in their scheduling system, or cancel them. Cancelling
a booking cancels it in its backend too (Cal.com), so the time is free again.

Every listing, confirmation and cancellation is written to the audit trail (who, when, which
booking or request: ids, codes and backends, never patient details). Times are shown in the
clinic's time zone (clinic.yml); naive times given by staff are read in it too. Patient
details are only ever rendered escaped, and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from clinic.booking import service as booking
from clinic.booking.scheduling import SchedulerError
from clinic.booking.service import BookingError, BookingView, RequestView
from clinic.clock import as_utc, utcnow
from clinic.profile import ClinicProfile
from clinic.staff import audit, inbox
from clinic.staff.accounts import StaffMember
from clinic.staff.console.api import _body as json_body
from clinic.staff.console.auth import form_fields, principal
from clinic.staff.console.responses import json_error, render
from clinic.staff.console.serialize import channel_label, iso

logger = logging.getLogger(__name__)

# Audit actions of this module (listed in clinic.staff.audit.ACTIONS).
VIEW = "booking_view"
CONFIRM_REQUEST = "booking_request_confirm"
CANCEL_REQUEST = "booking_request_cancel"
CANCEL_BOOKING = "booking_cancel"
CANCEL_BOOKING_FAILED = "booking_cancel_failed"

ACTIVE = ("booked", "pending")
BOOKING_STATUSES = ("active", "booked", "pending", "cancelled", "all")
REQUEST_STATUSES = ("requested", "confirmed", "cancelled", "all")
BACKEND_LABELS = {"builtin": "Built-in calendar", "calcom": "Cal.com", "webhook": "Clinic system (webhook)"}
BOOKING_STATUS_LABELS = {"booked": "Booked", "pending": "Awaiting host", "cancelled": "Cancelled"}
REQUEST_STATUS_LABELS = {"requested": "Awaiting staff", "confirmed": "Confirmed", "cancelled": "Cancelled"}
KIND_LABELS = {"book": "New booking", "reschedule": "Move booking", "cancel": "Cancel booking"}
FALLBACK_LABELS = {
    "backend_unavailable": "The scheduling system did not answer (down or timed out).",
    "backend_error": "The scheduling system refused the booking or failed.",
    "backend_not_configured": "The scheduling system is not set up (its settings are missing).",
}
WEBHOOK_LABELS = {
    "pending": "being sent to the clinic's system",
    "delivered": "delivered to the clinic's system",
    "failed": "could not be delivered to the clinic's system yet (retried)",
}
NOTICES = {
    "request_confirmed": ("success", "Request confirmed. Let the patient know: they are not told automatically."),
    "request_cancelled": ("info", "Request cancelled. Let the patient know: they are not told automatically."),
    "booking_cancelled": ("info", "Booking cancelled; the time is free again. Let the patient know."),
}
MAX_IDS_IN_DETAIL = 40


# ------------------------------------------------------------------ helpers


def _database_url(request: Request) -> str:
    return request.app.state.console.database_url


def _profile_source(request: Request) -> Callable[[], ClinicProfile]:
    return request.app.state.console.profile


def _user(request: Request) -> StaffMember:
    return principal(request).user


def _via(request: Request) -> str:
    return principal(request).via


def _path_id(request: Request, name: str) -> int:
    value = int(request.path_params[name])
    if not 0 < value <= inbox.MAX_ID:
        raise HTTPException(404, "No such booking." if name == "booking_id" else "No such booking request.")
    return value


def record(database_url: str, user: StaffMember, action: str, detail: str, conversation_id: str | None = None) -> None:
    """Writes a booking audit event (``detail`` names ids, codes and backends: no patient details)."""
    audit.record(database_url, user, action, None, detail, conversation_id=conversation_id)


def _ids(what: str, ids: list[int]) -> str:
    if not ids:
        return f"no {what}"
    shown = ",".join(str(i) for i in ids[:MAX_IDS_IN_DETAIL])
    more = f" (+{len(ids) - MAX_IDS_IN_DETAIL} more)" if len(ids) > MAX_IDS_IN_DETAIL else ""
    return f"{what} {shown}{more}"


def _booking_detail(view: BookingView, via: str, extra: str = "") -> str:
    return f"booking {view.id} (code {view.code}, {view.backend}){extra}; via {via}"


def _request_detail(view: RequestView, via: str, extra: str = "") -> str:
    concerns = f" of booking {view.booking_id}" if view.booking_id else ""
    code = f", code {view.code}" if view.code else ""
    return f"request {view.id} ({view.kind}{concerns}{code}, {view.backend or '-'}){extra}; via {via}"


def _missing(exc: BookingError) -> bool:
    """No such booking or request (clinic.booking.service says "no booking 7" / "no booking request 7")."""
    return str(exc).startswith("no booking")


def start_of_today(tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """Midnight today in the clinic's time zone (today's earlier consultations stay listed)."""
    local = (now or utcnow()).astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz)


def parse_time(raw: str, tz: ZoneInfo, what: str = "start") -> datetime:
    """A date (midnight) or date and time in ISO 8601; without an offset, in the clinic's time zone.

    Raises:
        HTTPException: 400 naming ``what``.
    """
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise HTTPException(400, f"{what} must be a date and time like 2031-03-03T10:30 (ISO 8601).") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def day_text(value: datetime | None, tz: ZoneInfo) -> str:
    """``Mon, Mar 3, 2031`` in the clinic's time zone."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    return f"{local:%a, %b} {local.day}, {local.year}"


def clock_text(value: datetime | None, tz: ZoneInfo) -> str:
    """``10:30 AM CST`` in the clinic's time zone."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'} {local:%Z}"


def local_iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with the clinic's UTC offset: ``2031-03-03T10:30:00-06:00``."""
    return value.astimezone(tz).isoformat() if value is not None else None


def input_value(value: datetime | None, tz: ZoneInfo) -> str:
    """The value of a ``datetime-local`` field, in the clinic's time zone."""
    return f"{value.astimezone(tz):%Y-%m-%dT%H:%M}" if value is not None else ""


def what_failed(view: RequestView) -> str:
    """Why staff have this request: the backend that failed, or the webhook backend by design."""
    if view.fallback_reason:
        label = FALLBACK_LABELS.get(view.fallback_reason, f"The scheduling system failed ({view.fallback_reason}).")
        return f"{label} Backend: {BACKEND_LABELS.get(view.backend or '', view.backend or 'unknown')}."
    if view.backend == "webhook":
        sent = WEBHOOK_LABELS.get(view.webhook_status or "", "")
        return "Webhook request: confirm it once booked in the clinic's system" + (f" ({sent})." if sent else ".")
    return "Request for staff to book."


# ------------------------------------------------------------------ JSON shapes


def booking_json(view: BookingView, tz: ZoneInfo) -> dict[str, Any]:
    """A booking in the API (times in UTC, and ``*_local`` with the clinic's offset)."""
    return {
        "id": view.id, "code": view.code, "status": view.status, "backend": view.backend,
        "start": iso(view.start), "end": iso(view.end), "start_local": local_iso(view.start, tz),
        "end_local": local_iso(view.end, tz), "chair": view.chair, "external_uid": view.external_uid,
        "full_name": view.full_name, "phone": view.phone, "email": view.email, "visit_reason": view.visit_reason,
        "patient_type": view.patient_type, "sms_consent": view.sms_consent, "channel": view.channel,
        "conversation_id": view.conversation_id, "created_at": iso(view.created_at),
        "cancelled_at": iso(view.cancelled_at), "cancelled_by": view.cancelled_by,
    }


def request_json(view: RequestView, tz: ZoneInfo) -> dict[str, Any]:
    """A booking request in the API; ``what_failed`` says why staff have it."""
    return {
        "id": view.id, "code": view.code, "kind": view.kind, "status": view.status, "backend": view.backend,
        "fallback_reason": view.fallback_reason, "what_failed": what_failed(view),
        "webhook_status": view.webhook_status, "booking_id": view.booking_id,
        "preferred_time": iso(view.preferred_time), "preferred_time_local": local_iso(view.preferred_time, tz),
        "preferred_time_text": view.preferred_time_text, "full_name": view.full_name, "phone": view.phone,
        "email": view.email, "visit_reason": view.visit_reason, "patient_type": view.patient_type,
        "sms_consent": view.sms_consent, "channel": view.channel, "conversation_id": view.conversation_id,
        "created_at": iso(view.created_at), "confirmed_at": iso(view.confirmed_at),
        "confirmed_by": view.confirmed_by, "cancelled_at": iso(view.cancelled_at), "cancelled_by": view.cancelled_by,
    }


# ------------------------------------------------------------------ blocking work (thread pool)


@dataclass(frozen=True)
class Listing:
    """What the page or the API shows."""

    tz: ZoneInfo
    timezone: str
    bookings: list[BookingView]
    requests: list[RequestView]
    confirmed: list[RequestView]  # confirmed requests to book, from today (the page only)


def _bookings(status: str, start: datetime | None, end: datetime | None, database_url: str) -> list[BookingView]:
    if status in ("active", "all"):
        rows = booking.list_bookings(status=None, start=start, end=end, database_url=database_url)
        return rows if status == "all" else [row for row in rows if row.status in ACTIVE]
    return booking.list_bookings(status=status, start=start, end=end, database_url=database_url)


def _audit_listing(database_url: str, user: StaffMember, via: str, bookings: Iterable[BookingView] | None,
                   requests: Iterable[RequestView] | None) -> None:
    parts = []
    if bookings is not None:
        parts.append(_ids("bookings", [b.id for b in bookings]))
    if requests is not None:
        parts.append(_ids("requests", [r.id for r in requests]))
    record(database_url, user, VIEW, f"{'; '.join(parts)}; via {via}")


def _confirmed_from(since: datetime, database_url: str) -> list[RequestView]:
    """Confirmed requests to book (the clinic's own system has them), at ``since`` or later."""
    rows = booking.list_requests(status="confirmed", database_url=database_url)
    upcoming = [r for r in rows if r.kind == "book" and (r.preferred_time is None or r.preferred_time >= since)]
    return sorted(upcoming, key=lambda r: (r.preferred_time is None, r.preferred_time or r.created_at, r.id))


def load(profile: Callable[[], ClinicProfile], database_url: str, user: StaffMember, via: str, *,
         booking_status: str | None = "active", start: str | None = None, end: str | None = None,
         request_status: str | None = "requested", confirmed: bool = False) -> Listing:
    """Bookings (``booking_status`` None: none) from ``start`` (default: today in the clinic) to
    ``end``, requests (``request_status`` None: none) and, with ``confirmed``, the confirmed
    requests from today; the listing is audited."""
    current = profile()
    tz = current.tz
    bookings = requests = None
    if booking_status is not None:
        since = parse_time(start, tz, "from") if start else start_of_today(tz)
        until = parse_time(end, tz, "to") if end else None
        bookings = _bookings(booking_status, since, until, database_url)
    if request_status is not None:
        requests = booking.list_requests(status=None if request_status == "all" else request_status,
                                         database_url=database_url)
    booked_requests = _confirmed_from(start_of_today(tz), database_url) if confirmed else []
    shown = None if requests is None else [*requests, *booked_requests]
    _audit_listing(database_url, user, via, bookings, shown)
    return Listing(tz, current.timezone, bookings or [], requests or [], booked_requests)


def confirm(profile: Callable[[], ClinicProfile], database_url: str, user: StaffMember, via: str,
            request_id: int, start: str | None) -> RequestView:
    """Confirms a request (at ``start`` when given: the time booked, if it changed); audited.

    Raises:
        HTTPException: 400 for a bad ``start``.
        BookingError: no such request, it is not open, or the new time is taken.
    """
    when = as_utc(parse_time(start, profile().tz)) if start else None
    view = booking.confirm_request(request_id, staff=user.username, start=when, database_url=database_url)
    extra = f" at {iso(view.preferred_time)}" if when is not None and view.preferred_time else ""
    record(database_url, user, CONFIRM_REQUEST, _request_detail(view, via, extra), view.conversation_id)
    return view


def cancel_request(database_url: str, user: StaffMember, via: str, request_id: int) -> RequestView:
    """Cancels (declines) a request; audited.

    Raises:
        BookingError: no such request, or it is cancelled already.
    """
    view = booking.cancel_request(request_id, staff=user.username, database_url=database_url)
    record(database_url, user, CANCEL_REQUEST, _request_detail(view, via), view.conversation_id)
    return view


def cancel_booking(profile: Callable[[], ClinicProfile], database_url: str, user: StaffMember, via: str,
                   booking_id: int) -> BookingView:
    """Cancels a booking, in its backend too; audited, a backend failure as well.

    Raises:
        BookingError: no such booking, or it is cancelled already.
        SchedulerError: the backend failed; nothing changed.
    """
    try:
        view = booking.cancel_booking(booking_id, staff=user.username, profile=profile(), database_url=database_url)
    except SchedulerError as exc:
        logger.warning("staff could not cancel booking %s in its backend (%s)", booking_id, exc)
        record(database_url, user, CANCEL_BOOKING_FAILED, f"booking {booking_id}: {exc}; via {via}")
        raise
    record(database_url, user, CANCEL_BOOKING, _booking_detail(view, via), view.conversation_id)
    return view


# ------------------------------------------------------------------ the page


async def _page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    show_cancelled = request.query_params.get("cancelled") == "1"
    listing: Listing = await run_in_threadpool(
        load, _profile_source(request), _database_url(request), _user(request), "console",
        booking_status="all" if show_cancelled else "active", confirmed=True,
    )
    tz = listing.tz
    notice = NOTICES.get(request.query_params.get("notice", "")) if status == 200 else None
    context = {
        "nav": "bookings",
        "bookings": listing.bookings,
        "requests": listing.requests,
        "confirmed": listing.confirmed,
        "timezone": listing.timezone,
        "show_cancelled": show_cancelled,
        "notice": notice,
        "error": error,
        "day": lambda value: day_text(value, tz),
        "clock": lambda value: clock_text(value, tz),
        "input_value": lambda value: input_value(value, tz),
        "what_failed": what_failed,
        "backend_labels": BACKEND_LABELS,
        "booking_status_labels": BOOKING_STATUS_LABELS,
        "kind_labels": KIND_LABELS,
        "channel_label": channel_label,
    }
    return render(request, "bookings.html", context, status)


async def bookings_page(request: Request) -> Response:
    """Requests awaiting staff, then upcoming bookings (``?cancelled=1``: cancelled ones too); audited."""
    return await _page(request)


def _back(notice: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/bookings?notice={notice}#{anchor}", status_code=303)


async def _act(request: Request, function: Callable[..., Any], *args: Any) -> Response | None:
    """Runs a page action; a refusal re-renders the page with the reason (None: it worked)."""
    try:
        await run_in_threadpool(function, *args)
    except BookingError as exc:
        if _missing(exc):
            raise HTTPException(404, "No such booking or request.") from None
        return await _page(request, status=409, error=f"Nothing changed: {exc}. The list below is current.")
    except SchedulerError as exc:
        message = f"The booking could not be cancelled in its scheduling system: {exc}. Nothing changed; try again."
        return await _page(request, status=502, error=message)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return await _page(request, status=400, error=str(exc.detail))
    return None


async def confirm_submit(request: Request) -> Response:
    """Confirms a request (``start``: the time booked, in the clinic's time zone, if it changed)."""
    request_id = _path_id(request, "request_id")
    start = form_fields(request).get("start", "").strip() or None
    refused = await _act(request, confirm, _profile_source(request), _database_url(request), _user(request),
                         "console", request_id, start)
    return refused or _back("request_confirmed", "requests")


async def cancel_request_submit(request: Request) -> Response:
    """Cancels (declines) a request."""
    request_id = _path_id(request, "request_id")
    refused = await _act(request, cancel_request, _database_url(request), _user(request), "console", request_id)
    return refused or _back("request_cancelled", "requests")


async def cancel_booking_submit(request: Request) -> Response:
    """Cancels a booking, in its scheduling system too."""
    booking_id = _path_id(request, "booking_id")
    refused = await _act(request, cancel_booking, _profile_source(request), _database_url(request), _user(request),
                         "console", booking_id)
    return refused or _back("booking_cancelled", "bookings")


# ------------------------------------------------------------------ the API


async def _api_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs an action in the thread pool: 404 unknown, 409 not allowed now, 502 backend failed."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except BookingError as exc:
        raise HTTPException(404 if _missing(exc) else 409, f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in choices:
        raise HTTPException(400, f"{name} must be one of {', '.join(choices)}.")
    return value


async def api_bookings(request: Request) -> Response:
    """``GET /api/bookings?status=active|booked|pending|cancelled|all&from=...&to=...`` (audited).

    ``from`` defaults to today (midnight in the clinic's time zone); ``from`` and ``to`` are ISO
    8601 dates or times, read in the clinic's time zone when they have no offset.
    """
    status = _choice(request, "status", BOOKING_STATUSES, "active")
    listing: Listing = await _api_call(
        load, _profile_source(request), _database_url(request), _user(request), "api", booking_status=status,
        start=request.query_params.get("from") or None, end=request.query_params.get("to") or None,
        request_status=None,
    )
    return JSONResponse({
        "timezone": listing.timezone, "bookings": [booking_json(view, listing.tz) for view in listing.bookings],
    })


async def api_requests(request: Request) -> Response:
    """``GET /api/booking-requests?status=requested|confirmed|cancelled|all``, oldest first (audited)."""
    status = _choice(request, "status", REQUEST_STATUSES, "requested")
    listing: Listing = await _api_call(
        load, _profile_source(request), _database_url(request), _user(request), "api", booking_status=None,
        request_status=status,
    )
    return JSONResponse({
        "timezone": listing.timezone, "requests": [request_json(view, listing.tz) for view in listing.requests],
    })


async def _tz(request: Request) -> ZoneInfo:
    return (await run_in_threadpool(_profile_source(request))).tz


async def api_confirm(request: Request) -> Response:
    """``POST /api/booking-requests/{id}/confirm`` (body ``{"start": "..."}`` if booked at another time)."""
    request_id = _path_id(request, "request_id")
    start = (await json_body(request)).get("start")
    if start is not None and not isinstance(start, str):
        raise HTTPException(400, '"start" must be a string (ISO 8601).')
    view = await _api_call(confirm, _profile_source(request), _database_url(request), _user(request), "api",
                           request_id, start or None)
    return JSONResponse({"request": request_json(view, await _tz(request))})


async def api_cancel_request(request: Request) -> Response:
    """``POST /api/booking-requests/{id}/cancel``."""
    request_id = _path_id(request, "request_id")
    await json_body(request)
    view = await _api_call(cancel_request, _database_url(request), _user(request), "api", request_id)
    return JSONResponse({"request": request_json(view, await _tz(request))})


async def api_cancel_booking(request: Request) -> Response:
    """``POST /api/bookings/{id}/cancel``: 502 (nothing changed) when its backend failed."""
    booking_id = _path_id(request, "booking_id")
    await json_body(request)
    try:
        view = await _api_call(cancel_booking, _profile_source(request), _database_url(request), _user(request),
                               "api", booking_id)
    except SchedulerError as exc:
        return json_error(502, "The booking could not be cancelled in its scheduling system; nothing changed.",
                          reason=str(exc))
    return JSONResponse({"booking": booking_json(view, await _tz(request))})


def routes() -> list[Route]:
    """The bookings page, its form posts, and the API's booking routes."""
    request_path = "/booking-requests/{request_id:int}"
    booking_path = "/bookings/{booking_id:int}"
    return [
        Route("/bookings", bookings_page, methods=["GET"], name="bookings"),
        Route(f"{request_path}/confirm", confirm_submit, methods=["POST"], name="booking_request_confirm"),
        Route(f"{request_path}/cancel", cancel_request_submit, methods=["POST"], name="booking_request_cancel"),
        Route(f"{booking_path}/cancel", cancel_booking_submit, methods=["POST"], name="booking_cancel"),
        Route("/api/bookings", api_bookings, methods=["GET"], name="api_bookings"),
        Route("/api/booking-requests", api_requests, methods=["GET"], name="api_booking_requests"),
        Route(f"/api{request_path}/confirm", api_confirm, methods=["POST"], name="api_booking_request_confirm"),
        Route(f"/api{request_path}/cancel", api_cancel_request, methods=["POST"], name="api_booking_request_cancel"),
        Route(f"/api{booking_path}/cancel", api_cancel_booking, methods=["POST"], name="api_booking_cancel"),
    ]


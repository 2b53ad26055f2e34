"""The patient beside a conversation: their bookings, other escalations and staff notes.

The conversation page shows them in its side panel (:func:`page_context`, read with the page,
whose view is audited); the form post adds a note about the patient; the JSON API returns the
same (``/api/escalations/{id}/patient``, ``/api/escalations/{id}/patient-notes``), audited as
views of the escalation. Logic: :mod:`clinic.staff.patient_context`, :mod:`clinic.staff.patient_notes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from clinic.profile import ClinicProfile
from clinic.staff import inbox, patient_context, patient_notes
from clinic.staff.console import serialize
from clinic.staff.console.api import _body as json_body
from clinic.staff.console.auth import form_fields, principal
from clinic.staff.console.bookings import (
    BOOKING_STATUS_LABELS,
    KIND_LABELS,
    booking_json,
    clock_text,
    day_text,
    request_json,
)
from clinic.staff.patient_context import EarlierEscalation, PatientContext

KIND_LABELS_PATIENT = {"phone": "this phone number", "conversation": "this conversation"}


def _database_url(request: Request) -> str:
    return request.app.state.console.database_url


def _profile_source(request: Request) -> Callable[[], ClinicProfile]:
    return request.app.state.console.profile


async def _tz(request: Request) -> ZoneInfo:
    return (await run_in_threadpool(_profile_source(request))).tz


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except inbox.NotFound as exc:
        raise HTTPException(404, exc.message) from None
    except inbox.InvalidText as exc:
        raise HTTPException(400, exc.message) from None


def _escalation_id(request: Request) -> int:
    value = int(request.path_params["escalation_id"])
    if not 0 < value <= inbox.MAX_ID:
        raise HTTPException(404, f"No escalation {value}.")
    return value


# ------------------------------------------------------------------ the conversation page


async def page_context(request: Request, escalation_id: int) -> dict[str, Any]:
    """What conversation.html needs for its patient panel (the page's own view is audited)."""
    database_url = _database_url(request)
    context = await run_in_threadpool(patient_context.context_for, escalation_id, database_url=database_url)
    notes = await run_in_threadpool(patient_notes.notes_for, escalation_id, database_url=database_url)
    tz = await _tz(request)
    return {
        "patient": context,
        "patient_notes": notes,
        "patient_kind_label": KIND_LABELS_PATIENT.get(notes.kind, notes.kind),
        "booking_day": lambda value: day_text(value, tz),
        "booking_clock": lambda value: clock_text(value, tz),
        "booking_status_labels": BOOKING_STATUS_LABELS,
        "booking_kind_labels": KIND_LABELS,
        "booking_link": booking_link,
    }


def booking_link(booking_id: int, status: str) -> str:
    """Where the bookings page lists a booking (cancelled ones only with ``?cancelled=1``)."""
    return f"/bookings{'?cancelled=1' if status == 'cancelled' else ''}#booking-{booking_id}"


async def add_note_submit(request: Request) -> Response:
    """Adds a note about the patient; a form error re-renders the page with the text kept."""
    from clinic.staff.console import views  # its page renderer (views imports this module for the panel)

    escalation_id = _escalation_id(request)
    text = form_fields(request).get("text", "")
    try:
        await _call(patient_notes.add_note, escalation_id, principal(request).user, text, via="console",
                    database_url=_database_url(request))
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return await views._rerender(request, escalation_id, 400, patient_note_error=exc.detail, patient_note_text=text)
    return RedirectResponse(f"/escalations/{escalation_id}?notice=note_added#patient-notes", status_code=303)


# ------------------------------------------------------------------ the API


def escalation_json(item: EarlierEscalation) -> dict[str, Any]:
    return {
        "id": item.id, "conversation_id": item.conversation_id, "channel": item.channel, "reason": item.reason,
        "urgency": item.urgency, "status": item.status, "created_at": serialize.iso(item.created_at),
        "resolved_at": serialize.iso(item.resolved_at),
        "resolved_by": serialize.staff_ref(item.resolved_by),
        "replies": item.replies, "outcome": item.outcome,
    }


def context_json(context: PatientContext, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "phones": context.phones,
        "upcoming_bookings": [booking_json(view, tz) for view in context.upcoming],
        "past_bookings": [booking_json(view, tz) for view in context.past],
        "booking_requests": [request_json(view, tz) for view in context.requests],
        "other_escalations": [escalation_json(item) for item in context.escalations],
    }


async def api_context(request: Request) -> Response:
    """``GET /api/escalations/{id}/patient``: the patient's bookings, booking requests awaiting
    staff, other escalations with their outcome, SMS opt-out and language (audited)."""
    escalation_id, database_url = _escalation_id(request), _database_url(request)
    detail = await _call(inbox.get_escalation, escalation_id, database_url=database_url)
    context = await _call(patient_context.view, escalation_id, principal(request).user, via="api",
                          database_url=database_url)
    opted_out = await run_in_threadpool(inbox.sms_opted_out, detail.summary, database_url=database_url)
    return JSONResponse({
        "escalation_id": escalation_id,
        "language": detail.summary.language,
        "sms_opted_out": opted_out,
        **context_json(context, await _tz(request)),
    })


def _notes_json(notes: patient_notes.PatientNotes) -> dict[str, Any]:
    return {"patient": notes.key, "by": notes.kind, "notes": [serialize.note(item) for item in notes.notes]}


async def api_notes(request: Request) -> Response:
    """``GET /api/escalations/{id}/patient-notes``: notes about the patient, newest first (audited)."""
    notes = await _call(patient_notes.list_notes, _escalation_id(request), principal(request).user, via="api",
                        database_url=_database_url(request))
    return JSONResponse(_notes_json(notes))


async def api_add_note(request: Request) -> Response:
    """``POST /api/escalations/{id}/patient-notes`` ``{"text": ...}``: 201."""
    body = await json_body(request)
    if not isinstance(body.get("text"), str):
        raise HTTPException(400, 'The body must have "text" (a string).')
    note = await _call(patient_notes.add_note, _escalation_id(request), principal(request).user, body["text"],
                       via="api", database_url=_database_url(request))
    return JSONResponse({"note": serialize.note(note)}, status_code=201)


def routes() -> list[Route]:
    """The note form post and the API (sessions or bearer tokens, as for the rest of the console)."""
    return [
        Route("/escalations/{escalation_id:int}/patient-notes", add_note_submit, methods=["POST"],
              name="patient_note_add"),
        Route("/api/escalations/{escalation_id:int}/patient", api_context, methods=["GET"], name="api_patient"),
        Route("/api/escalations/{escalation_id:int}/patient-notes", api_notes, methods=["GET"],
              name="api_patient_notes"),
        Route("/api/escalations/{escalation_id:int}/patient-notes", api_add_note, methods=["POST"],
              name="api_patient_note_add"),
    ]

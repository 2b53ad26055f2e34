"""The console's JSON API for integrations (``Authorization: Bearer <token>``).

Same capabilities as the pages, same audit trail (``via api``). Errors are
``{"error": "..."}`` with 400 (bad query or body), 401 (no valid token), 404 (unknown
escalation), 409 (resolved already, or claimed by someone else), 413 (body over 64 KiB)
or 502 (Rasa did not take the reply or the hand-back).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clinic.clock import utcnow
from clinic.staff import inbox
from clinic.staff.accounts import INSIGHTS, StaffMember
from clinic.staff.console import insights, serialize
from clinic.staff.console.auth import principal
from clinic.staff.console.responses import json_error
from clinic.staff.console.roles import require

FIND_PARAMS = {"conversation_id": "conversation", "phone": "phone", "q": "any"}  # -> inbox.find_escalations(by=)


def _database_url(request: Request) -> str:
    return request.app.state.console.database_url


def _user(request: Request) -> StaffMember:
    return principal(request).user


def _escalation_id(request: Request) -> int:
    return int(request.path_params["escalation_id"])


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of the body (an empty body is ``{}``).

    Raises:
        HTTPException: 400 when the body is not a UTF-8 JSON object.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep
        raise HTTPException(400, "The body must be a JSON object (UTF-8).") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "The body must be a JSON object.")
    return data


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs an inbox call in the thread pool and maps its errors to HTTP codes."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except inbox.NotFound as exc:
        raise HTTPException(404, exc.message) from None
    except inbox.Conflict as exc:
        raise HTTPException(409, exc.message) from None
    except (inbox.InvalidText, inbox.InvalidCursor, inbox.InvalidQuery) as exc:
        raise HTTPException(400, exc.message) from None


def _summary(item: inbox.EscalationSummary) -> dict[str, Any]:
    return serialize.summary(item, utcnow())


async def me(request: Request) -> Response:
    """``GET /api/me``: the account the token acts as."""
    user = _user(request)
    return JSONResponse({
        "id": user.id, "username": user.username, "display_name": user.display_name, "is_admin": user.is_admin,
        "role": user.effective_role,
    })


async def get_insights(request: Request) -> Response:
    """``GET /api/insights?from=YYYY-MM-DD&to=YYYY-MM-DD``: every aggregate of the Insights page
    (no patient text), for admins and managers; days in the clinic's time zone (default: the last 30)."""
    require(request, INSIGHTS, insights.NOT_INSIGHTS)
    period = insights.period_of(request)
    return JSONResponse(await run_in_threadpool(insights.report_for, request, period))


async def list_escalations(request: Request) -> Response:
    """``GET /api/escalations?status=open|resolved&filter=all|mine|unassigned&cursor=&limit=``:
    a page of the inbox (``next``: the next page's URL, or null; each row with ``preview``, the
    start of the latest patient message, and ``since_reply``, audited when previews are shown), or
    with ``conversation_id=``, ``phone=`` or ``q=`` (an id, phone, name, booking code or words of a
    patient message) the escalations found, of every status (audited)."""
    params = request.query_params
    finding = [name for name in FIND_PARAMS if name in params]
    if finding:
        return await _find(request, finding)
    status = params.get("status", "open")
    filter_ = params.get("filter", "all")
    if status not in inbox.STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(inbox.STATUSES)}.")
    if filter_ not in inbox.FILTERS:
        raise HTTPException(400, f"filter must be one of {', '.join(inbox.FILTERS)}.")
    raw_limit = params.get("limit", str(inbox.PAGE_SIZE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= inbox.PAGE_SIZE:
        raise HTTPException(400, f"limit must be a whole number from 1 to {inbox.PAGE_SIZE}.")
    page = await _call(
        inbox.page_escalations, status=status, filter=filter_, user=_user(request), cursor=params.get("cursor") or None,
        limit=int(raw_limit), database_url=_database_url(request),
    )
    next_url = None
    if page.next_cursor is not None:
        query = {"status": status, "filter": filter_, "cursor": page.next_cursor}
        if "limit" in params:
            query["limit"] = raw_limit
        next_url = f"/api/escalations?{urlencode(query)}"
    await run_in_threadpool(inbox.record_listing, page.rows, _user(request), via="api",
                            database_url=_database_url(request))
    return JSONResponse({"escalations": [_summary(row) for row in page.rows], "next": next_url})


async def _find(request: Request, finding: list[str]) -> Response:
    """``conversation_id=``, ``phone=`` or ``q=``: every escalation found, open first (audited)."""
    if len(finding) > 1 or any(name in request.query_params for name in ("status", "filter", "cursor", "limit")):
        raise HTTPException(400, "Give conversation_id, phone or q alone (they list escalations of every status).")
    by = FIND_PARAMS[finding[0]]
    rows = await _call(inbox.find_escalations, request.query_params[finding[0]], _user(request), by=by, via="api",
                       database_url=_database_url(request))
    return JSONResponse({"escalations": [_summary(row) for row in rows], "next": None})


async def get_escalation(request: Request) -> Response:
    """``GET /api/escalations/{id}``: with transcript, notes, replies and notifications (audited).

    ``sms_opted_out``: on SMS (channel ``twilio``), whether the patient texted STOP (replies to
    them are refused); None for other channels or when the state cannot be read.
    """
    database_url = _database_url(request)
    detail = await _call(inbox.view, _escalation_id(request), _user(request), via="api", database_url=database_url)
    transcript = await run_in_threadpool(inbox.transcript, detail.summary.conversation_id)
    notifications = await run_in_threadpool(inbox.notifications_for, detail.summary.id, database_url=database_url)
    opted_out = await run_in_threadpool(inbox.sms_opted_out, detail.summary, database_url=database_url)
    return JSONResponse({
        "escalation": _summary(detail.summary),
        "sms_opted_out": opted_out,
        "trigger_text": detail.trigger_text,
        "transcript": [serialize.transcript_entry(entry) for entry in transcript.entries],
        "transcript_error": transcript.error,
        "notes": [serialize.note(item) for item in detail.notes],
        "replies": [serialize.reply(item) for item in detail.replies],
        "notifications": [serialize.notification(item) for item in notifications],
    })


async def claim(request: Request) -> Response:
    """``POST /api/escalations/{id}/claim`` (body ``{"take_over": true}`` to take it from someone else)."""
    take_over = (await _body(request)).get("take_over", False)
    if not isinstance(take_over, bool):
        raise HTTPException(400, "take_over must be true or false.")
    summary = await _call(inbox.claim, _escalation_id(request), _user(request), take_over=take_over, via="api",
                          database_url=_database_url(request))
    return JSONResponse({"escalation": _summary(summary)})


async def unassign(request: Request) -> Response:
    """``POST /api/escalations/{id}/unassign``."""
    await _body(request)
    summary = await _call(inbox.unassign, _escalation_id(request), _user(request), via="api",
                          database_url=_database_url(request))
    return JSONResponse({"escalation": _summary(summary)})


def _text(body: dict[str, Any]) -> str:
    if "text" not in body:
        raise HTTPException(400, 'The body must have "text".')
    if not isinstance(body["text"], str):
        raise HTTPException(400, '"text" must be a string.')
    return body["text"]


async def reply(request: Request) -> Response:
    """``POST /api/escalations/{id}/reply`` ``{"text": ...}``: 201 when delivered, 502 when not."""
    text = _text(await _body(request))
    result = await _call(inbox.reply, _escalation_id(request), _user(request), text, via="api",
                         database_url=_database_url(request))
    if result.status != "delivered":
        return json_error(502, "The reply could not be delivered.", reason=result.error, reply=serialize.reply(result))
    return JSONResponse({"reply": serialize.reply(result)}, status_code=201)


async def add_note(request: Request) -> Response:
    """``POST /api/escalations/{id}/notes`` ``{"text": ...}``: 201."""
    text = _text(await _body(request))
    note = await _call(inbox.add_note, _escalation_id(request), _user(request), text, via="api",
                       database_url=_database_url(request))
    return JSONResponse({"note": serialize.note(note)}, status_code=201)


async def resolve(request: Request) -> Response:
    """``POST /api/escalations/{id}/resolve``: 409 when resolved already, 502 when the hand-back failed."""
    await _body(request)
    result = await _call(inbox.resolve, _escalation_id(request), _user(request), via="api",
                         database_url=_database_url(request))
    if not result.ok:
        return json_error(
            502, "The conversation could not be handed back to the assistant; it is still open.",
            reason=result.error, escalation=_summary(result.escalation),
        )
    return JSONResponse({"escalation": _summary(result.escalation)})


def routes() -> list[Route]:
    """The API's routes (all need a bearer token)."""
    escalation = "/api/escalations/{escalation_id:int}"
    return [
        Route("/api/me", me, methods=["GET"], name="api_me"),
        Route("/api/insights", get_insights, methods=["GET"], name="api_insights"),
        Route("/api/escalations", list_escalations, methods=["GET"], name="api_escalations"),
        Route(escalation, get_escalation, methods=["GET"], name="api_escalation"),
        Route(f"{escalation}/claim", claim, methods=["POST"], name="api_claim"),
        Route(f"{escalation}/unassign", unassign, methods=["POST"], name="api_unassign"),
        Route(f"{escalation}/reply", reply, methods=["POST"], name="api_reply"),
        Route(f"{escalation}/notes", add_note, methods=["POST"], name="api_notes"),
        Route(f"{escalation}/resolve", resolve, methods=["POST"], name="api_resolve"),
    ]

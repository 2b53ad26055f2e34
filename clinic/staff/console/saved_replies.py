"""Saved replies in the console: the administrators' page, the reply box's list, and the JSON API.

- ``/saved-replies``: every staff member sees the saved replies in use; administrators also
  create, edit, retire and restore them there (form posts, each audited).
- The conversation page offers the replies that suit its channel, filled in for the patient
  (:func:`reply_box_context`); ``console.js`` inserts the chosen one into the reply box, where
  staff edit it before sending it like any reply.
- ``GET /api/saved-replies`` (staff; ``?escalation_id=`` fills them in for that conversation),
  ``POST /api/saved-replies``, ``POST /api/saved-replies/{id}`` (edit) and
  ``POST /api/saved-replies/{id}/retire`` or ``/restore`` (administrators).

Logic: :mod:`clinic.staff.saved_replies`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from clinic.profile import ClinicProfile
from clinic.staff import inbox, saved_replies
from clinic.staff.accounts import StaffMember
from clinic.staff.console.api import _body as json_body
from clinic.staff.console.auth import form_fields, principal
from clinic.staff.console.responses import render
from clinic.staff.console.serialize import iso
from clinic.staff.saved_replies import ReadyReply, SavedReplyView

CHANNEL_LABELS = {None: "Web and SMS", "web": "Website chat", "sms": "SMS"}
NOTICES = {
    "created": ("success", "Saved reply added."),
    "saved": ("success", "Saved reply changed."),
    "retired": ("info", "Saved reply retired: staff no longer see it."),
    "restored": ("success", "Saved reply back in use."),
}
ADMIN_ONLY = "Only administrators can change saved replies."


def _database_url(request: Request) -> str:
    return request.app.state.console.database_url


def _profile(request: Request) -> Callable[[], ClinicProfile]:
    return request.app.state.console.profile


def _user(request: Request) -> StaffMember:
    return principal(request).user


def _reply_id(request: Request) -> int:
    return int(request.path_params["reply_id"])


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a saved-reply call in the thread pool: 403 for a non-admin, 404 for an unknown id,
    409 for a name in use, 400 for a bad field."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except PermissionError:
        raise HTTPException(403, ADMIN_ONLY) from None
    except saved_replies.UnknownReply as exc:
        raise HTTPException(404, exc.message) from None
    except saved_replies.DuplicateName as exc:
        raise HTTPException(409, exc.message) from None
    except saved_replies.InvalidReply as exc:
        raise HTTPException(400, exc.message) from None


def reply_json(item: SavedReplyView) -> dict[str, Any]:
    """A saved reply as administrators manage it (``text`` with its placeholders)."""
    return {
        "id": item.id, "name": item.name, "text": item.body, "channel": item.channel, "retired": item.retired,
        "created_by": item.created_by, "updated_by": item.updated_by, "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
    }


def ready_json(item: ReadyReply) -> dict[str, Any]:
    """A saved reply filled in for a conversation."""
    return {"id": item.id, "name": item.name, "channel": item.channel, "text": item.text}


# ------------------------------------------------------------------ the conversation page


async def reply_box_context(request: Request, summary: inbox.EscalationSummary) -> dict[str, Any]:
    """The saved replies the conversation page offers above its reply box (none once resolved)."""
    if summary.status != "open":
        return {"saved_replies": []}
    profile = await run_in_threadpool(_profile(request))
    ready = await run_in_threadpool(
        saved_replies.replies_for, summary.conversation_id, summary.channel, profile,
        database_url=_database_url(request),
    )
    return {"saved_replies": ready}


# ------------------------------------------------------------------ the page


async def _page(request: Request, *, status: int = 200, error: str | None = None, form: dict[str, str] | None = None,
                editing: int | None = None) -> Response:
    user = _user(request)
    replies = await run_in_threadpool(saved_replies.list_replies, include_retired=user.is_admin,
                                      database_url=_database_url(request))
    context = {
        "replies": replies,
        "placeholders": saved_replies.PLACEHOLDERS,
        "channel_labels": CHANNEL_LABELS,
        "name_limit": saved_replies.NAME_LIMIT,
        "body_limit": saved_replies.BODY_LIMIT,
        "notice": NOTICES.get(request.query_params.get("notice", "")) if status == 200 else None,
        "error": error,
        "form": form or {},
        "editing": editing,
        "nav": "saved_replies",
    }
    return render(request, "saved_replies.html", context, status)


async def page(request: Request) -> Response:
    """The saved replies (administrators: with the retired ones and the forms to change them)."""
    return await _page(request)


def _fields(request: Request) -> dict[str, str]:
    fields = form_fields(request)
    return {"name": fields.get("name", ""), "text": fields.get("text", ""), "channel": fields.get("channel", "")}


async def _form_post(request: Request, change: Callable[[dict[str, str]], Any], notice: str,
                     editing: int | None = None) -> Response:
    """Runs a change from a form; a bad field re-renders the page with the message and the text kept."""
    fields = _fields(request)
    try:
        await _call(change, fields)
    except HTTPException as exc:
        if exc.status_code not in (400, 409):
            raise
        return await _page(request, status=exc.status_code, error=str(exc.detail), form=fields, editing=editing)
    return RedirectResponse(f"/saved-replies?notice={notice}", status_code=303)


async def create_submit(request: Request) -> Response:
    """Adds a saved reply (administrators)."""
    user, url = _user(request), _database_url(request)
    return await _form_post(
        request,
        lambda f: saved_replies.create_reply(user, f["name"], f["text"], f["channel"], database_url=url),
        "created",
    )


async def edit_submit(request: Request) -> Response:
    """Changes a saved reply (administrators)."""
    user, url, reply_id = _user(request), _database_url(request), _reply_id(request)
    return await _form_post(
        request,
        lambda f: saved_replies.update_reply(reply_id, user, f["name"], f["text"], f["channel"], database_url=url),
        "saved",
        editing=reply_id,
    )


async def retire_submit(request: Request) -> Response:
    """Retires a saved reply (administrators)."""
    await _call(saved_replies.set_retired, _reply_id(request), _user(request), True,
                database_url=_database_url(request))
    return RedirectResponse("/saved-replies?notice=retired", status_code=303)


async def restore_submit(request: Request) -> Response:
    """Puts a retired saved reply back in use (administrators); a name in use again is explained."""
    try:
        await _call(saved_replies.set_retired, _reply_id(request), _user(request), False,
                    database_url=_database_url(request))
    except HTTPException as exc:
        if exc.status_code != 409:
            raise
        return await _page(request, status=409, error=str(exc.detail))
    return RedirectResponse("/saved-replies?notice=restored", status_code=303)


# ------------------------------------------------------------------ JSON API


async def api_list(request: Request) -> Response:
    """``GET /api/saved-replies``: those in use (``?include_retired=true``: all, administrators);
    ``?escalation_id=N``: those suiting that conversation's channel, filled in for its patient."""
    params, user, url = request.query_params, _user(request), _database_url(request)
    include_retired = params.get("include_retired", "false")
    if include_retired not in ("true", "false"):
        raise HTTPException(400, "include_retired must be true or false.")
    if include_retired == "true" and not user.is_admin:
        raise HTTPException(403, ADMIN_ONLY)
    if "escalation_id" in params:
        raw = params["escalation_id"]
        if not raw.isdigit() or not 0 < int(raw) <= inbox.MAX_ID:
            raise HTTPException(404, "No such escalation.")
        try:
            detail = await run_in_threadpool(inbox.get_escalation, int(raw), database_url=url)
        except inbox.NotFound as exc:
            raise HTTPException(404, exc.message) from None
        profile = await run_in_threadpool(_profile(request))
        ready = await run_in_threadpool(saved_replies.replies_for, detail.summary.conversation_id,
                                        detail.summary.channel, profile, database_url=url)
        return JSONResponse({"saved_replies": [ready_json(item) for item in ready]})
    replies = await run_in_threadpool(saved_replies.list_replies, include_retired=include_retired == "true",
                                      database_url=url)
    return JSONResponse({"saved_replies": [reply_json(item) for item in replies]})


def _api_fields(body: dict[str, Any]) -> tuple[Any, Any, Any]:
    if "name" not in body or "text" not in body:
        raise HTTPException(400, 'The body must have "name" and "text" (and may have "channel": "web" or "sms").')
    return body["name"], body["text"], body.get("channel")


async def api_create(request: Request) -> Response:
    """``POST /api/saved-replies`` ``{"name", "text", "channel"}``: 201 (administrators)."""
    name, text, channel = _api_fields(await json_body(request))
    item = await _call(saved_replies.create_reply, _user(request), name, text, channel, via="api",
                       database_url=_database_url(request))
    return JSONResponse({"saved_reply": reply_json(item)}, status_code=201)


async def api_edit(request: Request) -> Response:
    """``POST /api/saved-replies/{id}`` ``{"name", "text", "channel"}`` (administrators)."""
    name, text, channel = _api_fields(await json_body(request))
    item = await _call(saved_replies.update_reply, _reply_id(request), _user(request), name, text, channel,
                       via="api", database_url=_database_url(request))
    return JSONResponse({"saved_reply": reply_json(item)})


async def api_retire(request: Request) -> Response:
    """``POST /api/saved-replies/{id}/retire`` (administrators)."""
    await json_body(request)
    item = await _call(saved_replies.set_retired, _reply_id(request), _user(request), True, via="api",
                       database_url=_database_url(request))
    return JSONResponse({"saved_reply": reply_json(item)})


async def api_restore(request: Request) -> Response:
    """``POST /api/saved-replies/{id}/restore`` (administrators); 409 when its name is in use."""
    await json_body(request)
    item = await _call(saved_replies.set_retired, _reply_id(request), _user(request), False, via="api",
                       database_url=_database_url(request))
    return JSONResponse({"saved_reply": reply_json(item)})


def routes() -> list[Route]:
    """The page, its form posts and the API's routes."""
    one, api_one = "/saved-replies/{reply_id:int}", "/api/saved-replies/{reply_id:int}"
    return [
        Route("/saved-replies", page, methods=["GET"], name="saved_replies"),
        Route("/saved-replies", create_submit, methods=["POST"], name="saved_reply_create"),
        Route(one, edit_submit, methods=["POST"], name="saved_reply_edit"),
        Route(f"{one}/retire", retire_submit, methods=["POST"], name="saved_reply_retire"),
        Route(f"{one}/restore", restore_submit, methods=["POST"], name="saved_reply_restore"),
        Route("/api/saved-replies", api_list, methods=["GET"], name="api_saved_replies"),
        Route("/api/saved-replies", api_create, methods=["POST"], name="api_saved_reply_create"),
        Route(api_one, api_edit, methods=["POST"], name="api_saved_reply_edit"),
        Route(f"{api_one}/retire", api_retire, methods=["POST"], name="api_saved_reply_retire"),
        Route(f"{api_one}/restore", api_restore, methods=["POST"], name="api_saved_reply_restore"),
    ]

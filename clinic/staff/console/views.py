"""The console's HTML pages, their form posts and the JSON the pages poll.

Form posts redirect back to the page (``?notice=...``) on success; a form error re-renders
the page with the message and the text kept. The database and Rasa are called in the
thread pool so a slow call never blocks other requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from clinic import clock
from clinic.clock import utcnow
from clinic.staff import audit, inbox
from clinic.staff.accounts import (
    LoginResult,
    StaffMember,
    create_session,
    delete_session,
    lookup_session,
    verify_login,
)
from clinic.staff.console import patients, reauth, saved_replies, serialize
from clinic.staff.console.addresses import client_address
from clinic.staff.console.auth import (
    LOGIN_COOKIE,
    LOGIN_PATH,
    SESSION_COOKIE,
    form_fields,
    new_login_token,
    principal,
    safe_next,
)
from clinic.staff.console.responses import render
from clinic.staff.console.throttle import Refusal

if TYPE_CHECKING:
    from clinic.staff.console.app import ConsoleConfig

LOGIN_FAILED = (
    "Sign-in failed: the username or password is wrong, or the account is locked after "
    "too many attempts (for 15 minutes). Ask an administrator if you are locked out."
)
THROTTLED = {
    "address": "Too many failed sign-ins from your network. Wait {minutes} min, then try again.",
    "account": (
        "Too many failed sign-ins with this username from your network. Wait {minutes} min, then try "
        "again, or ask an administrator."
    ),
}
SESSION_ENDED = {
    "idle": "You were signed out after {minutes} minutes without activity. Sign in to continue.",
    "max_age": "You were signed out: a session lasts 24 hours at most. Sign in to continue.",
}
REAUTH_FAILED = "That is not your password. Type it again to continue."
REAUTH_LOCKED = "Your account is locked after too many wrong passwords. Ask another administrator to unlock it."
SHOW = {
    "open": ("open", "all", "All open"),
    "mine": ("open", "mine", "Mine"),
    "unassigned": ("open", "unassigned", "Unassigned"),
    "resolved": ("resolved", "all", "Resolved"),
}
COUNT_KEYS = {"open": "all", "mine": "mine", "unassigned": "unassigned"}
EMPTY_TEXT = {
    "open": "No open escalations. New ones appear here on their own.",
    "mine": "Nothing assigned to you.",
    "unassigned": "Every open escalation has someone on it.",
    "resolved": "No resolved escalations yet.",
}
NOTICES = {
    "claimed": ("success", "You have claimed this conversation."),
    "unassigned": ("info", "The conversation is back in the unassigned queue."),
    "reply_sent": ("success", "Reply delivered to the patient."),
    "note_added": ("success", "Note added."),
    "resolved": ("success", "Resolved: the assistant has the conversation again."),
    "claimed_by_other": (
        "warning",
        "Someone else has claimed this conversation. Take it over only after agreeing with them.",
    ),
    "already_resolved": ("warning", "This conversation is resolved already."),
}
MAX_AFTER_ID = 2**63 - 1


# ------------------------------------------------------------------ helpers


def _config(request: Request) -> ConsoleConfig:
    return request.app.state.console


def _user(request: Request) -> StaffMember:
    return principal(request).user


_render = render


def _client(request: Request) -> str:
    return client_address(request, _config(request).trusted_proxies)


def _set_cookie(request: Request, response: Response, name: str, value: str, **options: Any) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=_config(request).secure_cookies, **options
    )


def _delete_cookie(request: Request, response: Response, name: str, path: str) -> None:
    response.delete_cookie(
        name, path=path, httponly=True, samesite="strict", secure=_config(request).secure_cookies
    )


def _escalation_id(request: Request) -> int:
    return int(request.path_params["escalation_id"])


def _back(escalation_id: int, notice: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/escalations/{escalation_id}?notice={notice}{anchor}", status_code=303)


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs a blocking inbox call in the thread pool; an unknown escalation is a 404."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except inbox.NotFound as exc:
        raise HTTPException(404, exc.message) from None


# ------------------------------------------------------------------ sign-in


def _login_form(
    request: Request,
    *,
    next_path: str | None,
    error: str | None,
    username: str = "",
    note: str | None = None,
    refusal: Refusal | None = None,
) -> Response:
    token = new_login_token()
    context = {"login_token": token, "next": safe_next(next_path), "error": error, "username": username, "note": note}
    response = _render(request, "login.html", context, 429 if refusal else 200)
    if refusal is not None:
        response.headers["retry-after"] = str(refusal.retry_after)
    _set_cookie(request, response, LOGIN_COOKIE, token, path=LOGIN_PATH, max_age=3600)
    return response


async def _signed_in(request: Request, token: str) -> bool:
    config = _config(request)
    session = await run_in_threadpool(
        lookup_session, token, database_url=config.database_url, touch=False, idle=config.idle_timeout,
        now=clock.utcnow(),
    )
    return session is not None


@dataclass(frozen=True)
class _Attempt:
    """A password check: ``result`` is None when the throttle refused it (``refusal`` says how
    long to wait); on a failure, ``refusal`` is the wait this failure started, if any."""

    result: LoginResult | None
    refusal: Refusal | None = None


async def _check_password(request: Request, username: str, password: str) -> _Attempt:
    """Checks a password through the sign-in throttle (:mod:`clinic.staff.console.throttle`)."""
    config = _config(request)
    address, now = _client(request), clock.utcnow()
    refusal = config.throttle.refusal(address, username, now)
    if refusal is not None:
        return _Attempt(None, refusal)
    counts = config.throttle.counts_toward_lockout(address, username)
    result = await run_in_threadpool(
        verify_login, username, password, database_url=config.database_url, hasher=config.password_hasher,
        counts_toward_lockout=counts, now=now,
    )
    if result.ok:
        config.throttle.succeeded(address, username)
        return _Attempt(result)
    started = config.throttle.failed(address, username, now, counted=counts and result.outcome == "bad_password")
    if result.locked_now:
        config.throttle.locked_out(username)
    return _Attempt(result, started)


def _failure_detail(attempt: _Attempt, address: str) -> str:
    """The audit detail of a failed password check (outcome, what it started, where from)."""
    result = attempt.result
    parts = [result.outcome if result is not None else "refused"]
    if result is not None and result.locked_now:
        parts.append("locked now")
    if attempt.refusal is not None:
        who = "the address" if attempt.refusal.scope == "address" else "this username from the address"
        parts.append(f"{who} now waits {attempt.refusal.retry_after} s")
    return f"{'; '.join(parts)}; from {address}"


def _throttled(refusal: Refusal) -> str:
    return THROTTLED[refusal.scope].format(minutes=refusal.minutes)


async def login_page(request: Request) -> Response:
    """The sign-in form (or straight to the inbox when already signed in); ``ended`` says why a
    session ran out."""
    token = request.cookies.get(SESSION_COOKIE)
    if token and await _signed_in(request, token):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    ended = SESSION_ENDED.get(request.query_params.get("ended", ""))
    note = ended.format(minutes=int(_config(request).idle_timeout.total_seconds() // 60)) if ended else None
    return _login_form(request, next_path=request.query_params.get("next"), error=None, note=note)


async def login_submit(request: Request) -> Response:
    """Checks the credentials; the same message for every failure (no hint whether a user exists).

    An address that failed too often is refused with 429 and ``Retry-After`` before the password
    is even checked.
    """
    config = _config(request)
    fields = form_fields(request)
    username, password = fields.get("username", "")[:256], fields.get("password", "")
    attempt = await _check_password(request, username, password)
    result = attempt.result
    if result is None and attempt.refusal is not None:  # refused unchecked: not audited, an attacker could flood it
        return _login_form(request, next_path=fields.get("next"), error=_throttled(attempt.refusal),
                           username=username, refusal=attempt.refusal)
    if result is None or not result.ok or result.user is None:  # (a successful sign-in always has its user)
        detail = _failure_detail(attempt, _client(request))
        await run_in_threadpool(audit.record, config.database_url, result.user if result else None, "login_failed",
                                None, detail)
        return _login_form(request, next_path=fields.get("next"), error=LOGIN_FAILED, username=username)
    old_token = request.cookies.get(SESSION_COOKIE)
    if old_token:
        await run_in_threadpool(delete_session, old_token, database_url=config.database_url)
    new = await run_in_threadpool(
        create_session, result.user.id, database_url=config.database_url, idle=config.idle_timeout,
        now=clock.utcnow(),
    )
    await run_in_threadpool(audit.record, config.database_url, result.user, "login", None, f"from {_client(request)}")
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, new.token, path="/")
    _delete_cookie(request, response, LOGIN_COOKIE, LOGIN_PATH)
    return response


async def logout(request: Request) -> Response:
    """Ends the session on the server and clears the cookie."""
    config = _config(request)
    await run_in_threadpool(delete_session, request.cookies.get(SESSION_COOKIE), database_url=config.database_url)
    await run_in_threadpool(audit.record, config.database_url, _user(request), "logout", None, None)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    _delete_cookie(request, response, SESSION_COOKIE, "/")
    return response


# ------------------------------------------------------------------ inbox


def _inbox_data(database_url: str, user: StaffMember, show: str, cursor: str | None) -> dict[str, Any]:
    status, filter_, _label = SHOW[show]
    page = inbox.page_escalations(status=status, filter=filter_, user=user, cursor=cursor, database_url=database_url)
    return {
        "rows": page.rows,
        "next": _page_link(show, page.next_cursor),
        "counts": inbox.counts(user, database_url=database_url),
        "failing": inbox.failing_notifications(database_url=database_url),
    }


def _page_link(show: str, cursor: str | None) -> str | None:
    """The inbox page starting at ``cursor`` (None when there is no such page)."""
    return f"/?{urlencode({'show': show, 'cursor': cursor})}" if cursor else None


def _show_and_cursor(request: Request, *, strict: bool) -> tuple[str, str | None]:
    show = request.query_params.get("show", "open")
    if show not in SHOW:
        if strict:
            raise HTTPException(400, f"show must be one of {', '.join(SHOW)}.")
        show = "open"
    return show, request.query_params.get("cursor") or None


async def _inbox_call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs an inbox listing in the thread pool; a bad cursor or query is a 400."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except (inbox.InvalidCursor, inbox.InvalidQuery) as exc:
        raise HTTPException(400, exc.message) from None


async def inbox_page(request: Request) -> Response:
    """Open escalations, urgent first then oldest first (or mine / unassigned / resolved), a page
    of :data:`clinic.staff.inbox.PAGE_SIZE` at a time; ``?find=`` lists one patient's instead."""
    if "find" in request.query_params:
        return await _found_page(request, request.query_params["find"])
    show, cursor = _show_and_cursor(request, strict=False)
    data = await _inbox_call(_inbox_data, _config(request).database_url, _user(request), show, cursor)
    await run_in_threadpool(inbox.record_listing, data["rows"], _user(request), via="console",
                            database_url=_config(request).database_url)
    tabs = [(key, label, COUNT_KEYS.get(key)) for key, (_s, _f, label) in SHOW.items()]
    poll = {"show": show, **({"cursor": cursor} if cursor else {})}
    context = {
        **data,
        "show": show,
        "cursor": cursor,
        "poll_url": f"/inbox.json?{urlencode(poll)}",
        "tabs": tabs,
        "empty_text": EMPTY_TEXT[show] if cursor is None else "Nothing more on this page.",
        "now": utcnow(),
        "nav": "inbox",
        "new_patient_message": serialize.new_patient_message,
        "language_label": serialize.language_label,
    }
    return _render(request, "inbox.html", context)


async def _found_page(request: Request, text: str) -> Response:
    """The escalations of a conversation id, phone number, name or booking code, or with words in a
    patient message (the look-up is audited)."""
    config, user = _config(request), _user(request)
    error, rows = None, []
    try:
        rows = await run_in_threadpool(inbox.find_escalations, text, user, via="console",
                                       database_url=config.database_url)
    except inbox.InvalidQuery as exc:
        error = exc.message
    context = {
        "rows": rows,
        "find": text,
        "find_error": error,
        "show": "found",
        "counts": await run_in_threadpool(inbox.counts, user, database_url=config.database_url),
        "tabs": [(key, label, COUNT_KEYS.get(key)) for key, (_s, _f, label) in SHOW.items()],
        "failing": [],
        "next": None,
        "empty_text": "No escalation found for this conversation id, phone number, name, booking code or text.",
        "now": utcnow(),
        "nav": "inbox",
        "new_patient_message": serialize.new_patient_message,
        "language_label": serialize.language_label,
    }
    return _render(request, "inbox.html", context, 400 if error else 200)


async def inbox_json(request: Request) -> Response:
    """What the inbox page polls: its rows (the same page), the next page's link, the tab counts
    and failing notifications. Not audited: it refreshes the page whose view was (as the
    conversation page's updates do)."""
    show, cursor = _show_and_cursor(request, strict=True)
    data = await _inbox_call(_inbox_data, _config(request).database_url, _user(request), show, cursor)
    now = utcnow()
    return JSONResponse({
        "show": show,
        "rows": [serialize.summary(row, now) for row in data["rows"]],
        "next": data["next"],
        "counts": data["counts"],
        "failing": [serialize.notification(item) for item in data["failing"]],
        "empty_text": EMPTY_TEXT[show] if cursor is None else "Nothing more on this page.",
        "generated_at": serialize.iso(now),
    })


# ------------------------------------------------------------------ a conversation


async def _conversation(
    request: Request, detail: inbox.EscalationDetail, *, status: int = 200, **extra: Any
) -> Response:
    database_url = _config(request).database_url
    transcript = await run_in_threadpool(inbox.transcript, detail.summary.conversation_id)
    notifications = await run_in_threadpool(inbox.notifications_for, detail.summary.id, database_url=database_url)
    opted_out = await run_in_threadpool(inbox.sms_opted_out, detail.summary, database_url=database_url)
    notice = NOTICES.get(request.query_params.get("notice", "")) if status == 200 else None
    context = {
        "e": detail.summary,
        "detail": detail,
        "transcript": transcript.entries,
        "transcript_error": transcript.error,
        "last_id": max((entry.id for entry in transcript.entries), default=0),
        "notifications": notifications,
        "sms_opted_out": opted_out,
        "now": utcnow(),
        "notice": notice,
        "reply_error": None,
        "reply_text": "",
        "note_error": None,
        "note_text": "",
        "resolve_error": None,
        "text_limit": inbox.TEXT_LIMIT,
        "sender_labels": serialize.SENDER_LABELS,
        "language_label": serialize.language_label,
        "reply_labels": serialize.REPLY_STATUS_LABELS,
        "nav": "inbox",
        "patient_note_error": None,
        "patient_note_text": "",
        **await patients.page_context(request, detail.summary.id),
        **await saved_replies.reply_box_context(request, detail.summary),
    }
    context.update(extra)
    return _render(request, "conversation.html", context, status)


async def conversation_page(request: Request) -> Response:
    """The transcript, replies, notes and actions of one escalation (recorded as a view)."""
    config = _config(request)
    detail = await _call(inbox.view, _escalation_id(request), _user(request), via="console",
                         database_url=config.database_url)
    return await _conversation(request, detail)


async def conversation_updates(request: Request) -> Response:
    """What the conversation page polls: transcript entries after ``after``, replies, notes, state.

    ``sms_opted_out`` is True or False on SMS (None elsewhere, or when it cannot be read).
    """
    raw_after = request.query_params.get("after", "0")
    if not raw_after.isdigit() or int(raw_after) > MAX_AFTER_ID:
        raise HTTPException(400, "after must be a transcript entry id (a whole number).")
    database_url = _config(request).database_url
    detail = await _call(inbox.get_escalation, _escalation_id(request), database_url=database_url)
    transcript = await run_in_threadpool(inbox.transcript, detail.summary.conversation_id, int(raw_after))
    opted_out = await run_in_threadpool(inbox.sms_opted_out, detail.summary, database_url=database_url)
    now = utcnow()
    return JSONResponse({
        "escalation": serialize.summary(detail.summary, now),
        "sms_opted_out": opted_out,
        "transcript": [serialize.transcript_entry(entry) for entry in transcript.entries],
        "transcript_error": transcript.error,
        "replies": [serialize.reply(item) for item in detail.replies],
        "notes": [serialize.note(item) for item in detail.notes],
    })


async def _rerender(request: Request, escalation_id: int, status: int, **extra: Any) -> Response:
    detail = await _call(inbox.get_escalation, escalation_id, database_url=_config(request).database_url)
    return await _conversation(request, detail, status=status, **extra)


async def claim(request: Request) -> Response:
    """Claims the conversation (``take_over=1``: even when someone else has it)."""
    escalation_id = _escalation_id(request)
    take_over = form_fields(request).get("take_over") == "1"
    try:
        await _call(inbox.claim, escalation_id, _user(request), take_over=take_over, via="console",
                    database_url=_config(request).database_url)
    except inbox.Conflict as exc:
        return _back(escalation_id, "claimed_by_other" if exc.reason == "claimed" else "already_resolved")
    return _back(escalation_id, "claimed")


async def unassign(request: Request) -> Response:
    """Puts the conversation back in the unassigned queue."""
    escalation_id = _escalation_id(request)
    try:
        await _call(inbox.unassign, escalation_id, _user(request), via="console",
                    database_url=_config(request).database_url)
    except inbox.Conflict:
        return _back(escalation_id, "already_resolved")
    return _back(escalation_id, "unassigned")


async def reply(request: Request) -> Response:
    """Sends a reply to the patient; a form error or a failed delivery (502) keeps the text."""
    escalation_id = _escalation_id(request)
    text = form_fields(request).get("text", "")
    try:
        result = await _call(inbox.reply, escalation_id, _user(request), text, via="console",
                             database_url=_config(request).database_url)
    except inbox.InvalidText as exc:
        return await _rerender(request, escalation_id, 400, reply_error=exc.message, reply_text=text)
    except inbox.Conflict:
        return _back(escalation_id, "already_resolved")
    if result.status != "delivered":
        message = f"Not delivered: {result.error}. The text is still here; send it again when ready."
        return await _rerender(request, escalation_id, 502, reply_error=message, reply_text=text)
    return _back(escalation_id, "reply_sent", "#replies")


async def add_note(request: Request) -> Response:
    """Adds an internal note; a form error keeps the text."""
    escalation_id = _escalation_id(request)
    text = form_fields(request).get("text", "")
    try:
        await _call(inbox.add_note, escalation_id, _user(request), text, via="console",
                    database_url=_config(request).database_url)
    except inbox.InvalidText as exc:
        return await _rerender(request, escalation_id, 400, note_error=exc.message, note_text=text)
    return _back(escalation_id, "note_added", "#notes")


async def resolve(request: Request) -> Response:
    """Hands the conversation back to the assistant and resolves it; a failure says why (502)."""
    escalation_id = _escalation_id(request)
    try:
        result = await _call(inbox.resolve, escalation_id, _user(request), via="console",
                             database_url=_config(request).database_url)
    except inbox.Conflict:
        return _back(escalation_id, "already_resolved")
    if not result.ok:
        return await _rerender(request, escalation_id, 502, resolve_error=result.error)
    return _back(escalation_id, "resolved")


# ------------------------------------------------------------------ password confirmation (admin actions)


def _confirm_form(request: Request, next_path: str | None, *, error: str | None = None,
                  refusal: Refusal | None = None) -> Response:
    minutes = int(reauth.REAUTH_WINDOW.total_seconds() // 60)
    context = {"next": safe_next(next_path), "error": error, "minutes": minutes, "nav": None}
    response = _render(request, "confirm_password.html", context, 429 if refusal else 200)
    if refusal is not None:
        response.headers["retry-after"] = str(refusal.retry_after)
    return response


async def confirm_page(request: Request) -> Response:
    """Asks for the password before an admin page (``next``)."""
    return _confirm_form(request, request.query_params.get("next"))


async def confirm_submit(request: Request) -> Response:
    """Checks the password (through the sign-in throttle), then goes on to the admin page."""
    config, who = _config(request), principal(request)
    fields = form_fields(request)
    attempt = await _check_password(request, who.user.username, fields.get("password", ""))
    result = attempt.result
    if result is None and attempt.refusal is not None:
        return _confirm_form(request, fields.get("next"), error=_throttled(attempt.refusal), refusal=attempt.refusal)
    if result is None or not result.ok or who.session_id is None:
        detail = _failure_detail(attempt, _client(request))
        await run_in_threadpool(audit.record, config.database_url, who.user, "reauth_failed", None, detail)
        locked = result is not None and result.outcome == "locked"
        return _confirm_form(request, fields.get("next"), error=REAUTH_LOCKED if locked else REAUTH_FAILED)
    config.confirmations.confirm(who.session_id, clock.utcnow())
    await run_in_threadpool(audit.record, config.database_url, who.user, "reauth", None, f"from {_client(request)}")
    return RedirectResponse(safe_next(fields.get("next")), status_code=303)


# ------------------------------------------------------------------ audit log


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > inbox.MAX_ID:
        raise HTTPException(400, f"{name} must be a whole number.")
    return int(raw)


async def audit_page(request: Request) -> Response:
    """The audit trail, newest first (administrators only, with their password typed lately)."""
    if not _user(request).is_admin:
        raise HTTPException(403, "Only administrators can read the audit log.")
    ask = reauth.confirmation_needed(request)
    if ask is not None:
        return ask
    action = request.query_params.get("action", "").strip() or None
    actions = audit.ACTIONS
    if action is not None and action not in actions:
        raise HTTPException(400, "Unknown action.")
    filters: dict[str, Any] = {
        "escalation_id": _int_param(request, "escalation"),
        "username": request.query_params.get("user", "").strip()[:64] or None,
        "action": action,
    }
    before_id = _int_param(request, "before")
    limit = 100
    events = await run_in_threadpool(
        audit.list_events, _config(request).database_url, before_id=before_id, limit=limit, **filters
    )
    context = {
        "events": events,
        "filters": filters,
        "actions": sorted(actions),
        "older": events[-1].id if len(events) == limit else None,
        "nav": "audit",
    }
    return _render(request, "audit.html", context)


def routes() -> list[Route]:
    """The pages, their form posts and polling endpoints (all but /login need a session)."""
    escalation = "/escalations/{escalation_id:int}"
    return [
        Route("/login", login_page, methods=["GET"], name="login"),
        Route("/login", login_submit, methods=["POST"], name="login_submit"),
        Route("/logout", logout, methods=["POST"], name="logout"),
        Route("/", inbox_page, methods=["GET"], name="inbox"),
        Route("/inbox.json", inbox_json, methods=["GET"], name="inbox_json"),
        Route(escalation, conversation_page, methods=["GET"], name="conversation"),
        Route(f"{escalation}/updates.json", conversation_updates, methods=["GET"], name="conversation_updates"),
        Route(f"{escalation}/claim", claim, methods=["POST"], name="claim"),
        Route(f"{escalation}/unassign", unassign, methods=["POST"], name="unassign"),
        Route(f"{escalation}/reply", reply, methods=["POST"], name="reply"),
        Route(f"{escalation}/notes", add_note, methods=["POST"], name="add_note"),
        Route(f"{escalation}/resolve", resolve, methods=["POST"], name="resolve"),
        Route("/audit", audit_page, methods=["GET"], name="audit"),
        Route(reauth.CONFIRM_PATH, confirm_page, methods=["GET"], name="confirm_password"),
        Route(reauth.CONFIRM_PATH, confirm_submit, methods=["POST"], name="confirm_password_submit"),
    ]

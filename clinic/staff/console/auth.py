"""Who is asking: browser sessions with CSRF tokens, and bearer tokens for the API.

:class:`AuthMiddleware` guards every path by default, so a new route cannot be left open by
mistake. Only :data:`PUBLIC_PATHS` (the sign-in page) and static files are served without
signing in.

- ``/api/...``: ``Authorization: Bearer <token>`` only (cookies are ignored, so no CSRF).
- Everything else: the session cookie. A page request (or form post) without a valid session
  is redirected to the sign-in page (``ended=idle`` or ``ended=max_age`` when the session just
  ran out, so the page can say so); a ``*.json`` request gets 401 (with ``"ended"``).
- Every state-changing request with a session must carry the session's CSRF token, in the
  form field ``csrf_token`` or the ``X-CSRF-Token`` header (403 otherwise).
- The sign-in form itself is protected by a double-submit token (cookie + form field).

The middleware parses URL-encoded form bodies itself (strict UTF-8, a few fields at most)
and hands the fields to the endpoints (:func:`form_fields`).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic import clock
from clinic.staff.accounts import StaffMember, check_session, lookup_api_token
from clinic.staff.console.responses import PRINCIPAL_KEY, error_response, json_error, wants_json

SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_PATH = "/login"
PUBLIC_PATHS = frozenset({LOGIN_PATH})
STATIC_PREFIX = "/static/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_KEY = "clinic.staff.console.form"
MAX_FORM_FIELDS = 20
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Principal:
    """The signed-in staff member of a request.

    Attributes:
        user: the account.
        via: ``console`` (session cookie) or ``api`` (bearer token).
        csrf_token: the session's CSRF token (console only).
        token_id: the API token's id (API only).
        session_id: the session's id (console only).
        signed_in_at: when the session's user signed in (console only).
    """

    user: StaffMember
    via: str
    csrf_token: str | None = None
    token_id: int | None = None
    session_id: int | None = None
    signed_in_at: datetime | None = None


class BadForm(ValueError):
    """A form body that is not strict URL-encoded UTF-8."""


def principal(request: Request) -> Principal:
    """The request's signed-in staff member (set by :class:`AuthMiddleware`)."""
    return request.scope[PRINCIPAL_KEY]


def form_fields(request: Request) -> dict[str, str]:
    """The URL-encoded form fields of a POST (parsed and CSRF-checked by the middleware)."""
    return request.scope.get(FORM_KEY, {})


def parse_form(body: bytes) -> dict[str, str]:
    """Strictly parses a URL-encoded body (browsers percent-encode everything but ASCII).

    Raises:
        BadForm: raw non-ASCII bytes, invalid UTF-8 after decoding, or too many fields.
    """
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm(str(exc)) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two tokens (False when either is missing)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def new_login_token() -> str:
    """A random token for the sign-in form's double-submit check."""
    return secrets.token_urlsafe(32)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a local path only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(char) < 32 or ord(char) == 127 for char in target) or target.startswith(LOGIN_PATH):
        return "/"
    return target


def _content_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class AuthMiddleware:
    """Loads the principal of every request and enforces sign-in and CSRF (see the module doc)."""

    def __init__(
        self, app: ASGIApp, *, database_url: str, secure_cookies: bool = True, idle_timeout: timedelta | None = None
    ) -> None:
        self.app = app
        self.database_url = database_url
        self.secure_cookies = secure_cookies
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        if path == "/api" or path.startswith("/api/"):
            handler: Callable[[Scope, Receive, Send], Awaitable[None]] = self._api
        elif path in PUBLIC_PATHS:
            handler = self._public
        else:
            handler = self._console
        await handler(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = Headers(scope=scope).get("authorization", "")
        scheme, _, token = header.partition(" ")
        credential = None
        if scheme.lower() == "bearer" and token.strip():
            credential = await run_in_threadpool(lookup_api_token, token.strip(), database_url=self.database_url)
        if credential is None:
            response = json_error(
                401, "A valid API token is required (Authorization: Bearer <token>).",
                {"www-authenticate": 'Bearer realm="clinic-console"'},
            )
            await response(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = Principal(credential.user, "api", token_id=credential.token_id)
        await self.app(scope, receive, send)

    async def _public(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The sign-in page: a POST must carry the double-submit token of the form."""
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        receive, fields = await self._form(scope, receive)
        if fields is None:
            await error_response(request, 400, "The form could not be read.")(scope, receive, send)
            return
        if not same_token(fields.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE)):
            message = "The sign-in form expired. Open the sign-in page again and retry."
            await error_response(request, 403, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _console(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        token = request.cookies.get(SESSION_COOKIE)
        polling = scope["path"].endswith(".json")
        session = ended = None
        if token:
            check = await run_in_threadpool(
                check_session, token, database_url=self.database_url, touch=not polling, idle=self.idle_timeout,
                now=clock.utcnow(),
            )
            session, ended = check.session, check.ended
        if session is None:
            await self._signed_out(request, bool(token), ended)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = Principal(
            session.user, "console", csrf_token=session.csrf_token, session_id=session.id,
            signed_in_at=session.signed_in_at,
        )
        if scope["method"] not in SAFE_METHODS:
            receive, fields = await self._form(scope, receive)
            if fields is None:
                await error_response(request, 400, "The form could not be read.")(scope, receive, send)
                return
            given = request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD)
            if not same_token(given, session.csrf_token):
                message = "This form has expired or did not come from the console. Reload the page and try again."
                await error_response(request, 403, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _form(self, scope: Scope, receive: Receive) -> tuple[Receive, dict[str, str] | None]:
        """Reads and parses a URL-encoded body (other bodies pass through unread: no fields)."""
        if _content_type(Headers(scope=scope)) != FORM_CONTENT_TYPE:
            scope[FORM_KEY] = {}
            return receive, {}
        body = await _read_body(receive)
        try:
            fields = parse_form(body)
        except BadForm:
            return _replay(body, receive), None
        scope[FORM_KEY] = fields
        return _replay(body, receive), fields

    def _signed_out(self, request: Request, had_cookie: bool, ended: str | None = None) -> Response:
        """401 for polling, the sign-in page otherwise (coming back to the page asked for, and
        saying why when the session ran out)."""
        response: Response
        reason = f"&{urlencode({'ended': ended})}" if ended else ""
        if wants_json(request.url.path):
            response = json_error(401, "Sign in first.", ended=ended)
        elif request.method not in SAFE_METHODS:
            response = RedirectResponse(f"{LOGIN_PATH}?{reason[1:]}" if ended else LOGIN_PATH, status_code=303)
        else:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}{reason}", status_code=303)
        if had_cookie:
            response.delete_cookie(
                SESSION_COOKIE, path="/", secure=self.secure_cookies, httponly=True, samesite="strict"
            )
        return response

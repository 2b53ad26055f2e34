"""The console's application factory."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jinja2
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from clinic.channels.request_limits import RequestLimitsMiddleware
from clinic.profile import ClinicProfile, ProfileCache
from clinic.settings import (
    IPNetwork,
    clinic_database_url,
    console_request_timeout,
    console_response_timeout,
    staff_trusted_proxies,
    supervisor_status_file,
)
from clinic.staff.accounts import has_permission
from clinic.staff.accounts import idle_timeout as configured_idle_timeout
from clinic.staff.console import api, bookings, insights, patients, saved_replies, views
from clinic.staff.console.auth import AuthMiddleware
from clinic.staff.console.middleware import MAX_BODY_BYTES, BodyLimitMiddleware, SecurityHeadersMiddleware
from clinic.staff.console.reauth import PasswordConfirmations
from clinic.staff.console.responses import error_response
from clinic.staff.console.roles import RoleMiddleware
from clinic.staff.console.serialize import channel_label, duration, iso, reason_label
from clinic.staff.console.throttle import SignInThrottle
from clinic.supervision import restart_notices

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"


@dataclass(frozen=True)
class ConsoleConfig:
    """What the pages and the API need to know (``request.app.state.console``)."""

    database_url: str
    secure_cookies: bool
    password_hasher: PasswordHasher | None
    asset_version: str
    profile: Callable[[], ClinicProfile]  # the clinic profile (time zone, scheduling backend)
    idle_timeout: timedelta
    trusted_proxies: tuple[IPNetwork, ...]  # whose X-Forwarded-For names the client
    throttle: SignInThrottle  # failed sign-ins per address (in memory)
    confirmations: PasswordConfirmations  # when each session last typed its password (in memory)


def _asset_version() -> str:
    digest = hashlib.sha256()
    for name in ("console.css", "console.js"):
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,  # every template is HTML: patient text is always escaped
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(iso=iso, duration=duration, reason_label=reason_label, channel_label=channel_label)
    return Jinja2Templates(env=env)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else "Not found."
    return error_response(request, exc.status_code, message, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("console error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(request, 500, "Something went wrong. Try again; if it keeps happening, tell IT.")


def create_app(
    database_url: str | None = None,
    *,
    secure_cookies: bool = True,
    password_hasher: PasswordHasher | None = None,
    profile: ClinicProfile | None = None,
    idle_timeout: timedelta | None = None,
    trusted_proxies: Sequence[IPNetwork] | None = None,
    throttle: SignInThrottle | None = None,
) -> Starlette:
    """Builds the staff console.

    Args:
        database_url: the clinic database (default ``CLINIC_DATABASE_URL``); must be migrated.
        secure_cookies: mark cookies ``Secure`` (HTTPS, or http://localhost in Chromium);
            False only for plain-http tests on a LAN (``CONSOLE_INSECURE_COOKIES=1``).
        password_hasher: the argon2 hasher for sign-ins (default: production parameters;
            tests pass a cheap one).
        profile: the clinic profile for bookings (default: clinic.yml, or ``$CLINIC_PROFILE``,
            re-read when it changes).
        idle_timeout: sessions end after this long without activity (default
            ``STAFF_IDLE_TIMEOUT_MINUTES``).
        trusted_proxies: reverse proxies whose ``X-Forwarded-For`` is believed (default
            ``STAFF_TRUSTED_PROXIES``).
        throttle: the sign-in throttle (default: :class:`SignInThrottle`'s limits).

    Returns:
        The ASGI application.
    """
    url = database_url or clinic_database_url()
    profile_source = (lambda: profile) if profile is not None else ProfileCache().get
    idle = idle_timeout or configured_idle_timeout()
    config = ConsoleConfig(
        url, secure_cookies, password_hasher, _asset_version(), profile_source, idle,
        tuple(staff_trusted_proxies() if trusted_proxies is None else trusted_proxies),
        throttle or SignInThrottle(), PasswordConfirmations(),
    )
    routes = [
        *views.routes(),
        *api.routes(),
        *bookings.routes(),
        *patients.routes(),
        *saved_replies.routes(),
        *insights.routes(),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES),
        Middleware(RequestLimitsMiddleware, max_body_bytes=None, request_timeout=console_request_timeout(),
                   response_timeout=console_response_timeout()),
        Middleware(AuthMiddleware, database_url=url, secure_cookies=secure_cookies, idle_timeout=idle),
        Middleware(RoleMiddleware),  # inside AuthMiddleware: the account is known
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.console = config
    app.state.templates = _templates()
    # base.html's notice of servers the launcher restarted
    app.state.templates.env.globals["restart_notices"] = lambda: restart_notices(
        supervisor_status_file(), config.profile().tz)
    app.state.templates.env.globals["can"] = has_permission  # base.html's navigation by role
    return app

"""The console's application factory."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
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

from clinic.profile import ClinicProfile, ProfileCache
from clinic.settings import clinic_database_url
from clinic.staff.console import api, bookings, views
from clinic.staff.console.auth import AuthMiddleware
from clinic.staff.console.middleware import MAX_BODY_BYTES, BodyLimitMiddleware, SecurityHeadersMiddleware
from clinic.staff.console.responses import error_response
from clinic.staff.console.serialize import channel_label, duration, iso, reason_label

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

    Returns:
        The ASGI application.
    """
    url = database_url or clinic_database_url()
    profile_source = (lambda: profile) if profile is not None else ProfileCache().get
    config = ConsoleConfig(url, secure_cookies, password_hasher, _asset_version(), profile_source)
    routes = [
        *views.routes(),
        *api.routes(),
        *bookings.routes(),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES),
        Middleware(AuthMiddleware, database_url=url, secure_cookies=secure_cookies),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.console = config
    app.state.templates = _templates()
    return app

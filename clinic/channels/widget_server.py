"""The website chat's own server: the widget's files, a demo clinic page and the chat history.

``python -m clinic.channels.widget_server`` serves, on ``WEB_PORT`` (8000):

* ``/widget/clinic-chat.js`` and ``.css``: the widget (``web/widget/``), embeddable on any
  site with one script tag; ``/widget/vendor/socket.io.min.js``: the socket.io client installed
  from npm into ``web/node_modules`` (``make`` runs ``npm ci``), never a CDN.
* ``/``: a demo page of the fictional clinic with the widget (values from clinic.yml);
  ``/?lang=es``: the same page in Spanish, where the widget speaks Spanish.
* ``POST /api/history`` ``{"session_id": ...}``: what was said so far in that conversation,
  so a reloaded page shows it (Rasa's socket.io channel does not replay history). The widget's
  session id is 256 random bits kept in the browser; it is the only key, so ids that are not
  long random tokens are refused and the answer is never cached.

The widget talks to Rasa directly (socket.io on ``RASA_PORT``); browsers reach Rasa at
``WEB_RASA_URL`` (default: the page's host name on ``RASA_PORT``). Other sites embedding the
widget need their origin in ``WEB_ALLOWED_ORIGINS`` for the history (and for Rasa, which takes
browsers only from those origins and this server's own). A request body over 64 KiB gets 413,
one not fully sent within ``WEB_REQUEST_TIMEOUT`` 408, and an answer not started within
``WEB_RESPONSE_TIMEOUT`` 503 (:class:`clinic.channels.request_limits.RequestLimitsMiddleware`).
Settings: .env.example.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic import settings
from clinic.channels.request_limits import RequestLimitsMiddleware
from clinic.profile import ProfileCache
from clinic.settings import DEFAULT_WIDGET_COLOR, PROJECT_DIR
from clinic.staff.transcript import read_transcript

logger = logging.getLogger("clinic.channels.widget_server")

WEB_DIR = PROJECT_DIR / "web"
WIDGET_DIR = WEB_DIR / "widget"
DEMO_DIR = WEB_DIR / "demo"
SOCKET_IO_CLIENT = WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
# The widget's ids: 32 random bytes in URL-safe base64 (43 characters). Anything shorter could
# be guessed or is not the widget's (an SMS conversation's id is a phone number).
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
MAX_HISTORY_BODY = 4096
MAX_EVENT_ID = 2**63 - 1  # the largest integer SQLite and PostgreSQL store
MAX_REQUEST_BODY = 64 * 1024  # any request: the widget only ever sends small JSON
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:]{2,39}")
SENDERS = {"patient": "patient", "bot": "bot", "staff": "staff"}
# The demo page per language (web/demo/); the widget on it speaks the page's <html lang>.
DEMO_PAGES = {"en": "index.html", "es": "es.html"}


@dataclass(frozen=True)
class WebConfig:
    """What the web server needs.

    Attributes:
        rasa_url: Rasa's address as browsers reach it; None: the page's host on ``rasa_port``.
        rasa_port: Rasa's port for that default.
        tracker_url: the tracker store (default ``TRACKER_STORE_URL``).
        allowed_origins: other sites allowed to fetch the history (the page's own always is).
        color: the demo page's widget colour.
        request_timeout: seconds a client has to send a request's body.
        response_timeout: seconds the server has to start an answer.
    """

    rasa_url: str | None = None
    rasa_port: int = 5005
    tracker_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    color: str = DEFAULT_WIDGET_COLOR
    request_timeout: float = 15.0
    response_timeout: float = 30.0
    profile: ProfileCache = field(default_factory=ProfileCache, compare=False)

    @classmethod
    def from_env(cls) -> WebConfig:
        """Reads ``WEB_RASA_URL``, ``RASA_PORT``, ``WEB_ALLOWED_ORIGINS``, ``WEB_WIDGET_COLOR``,
        ``WEB_REQUEST_TIMEOUT`` and ``WEB_RESPONSE_TIMEOUT``.

        Raises:
            ValueError: a malformed colour, URL or timeout.
        """
        return cls(
            rasa_url=settings.web_rasa_url(),
            rasa_port=settings.rasa_port(),
            allowed_origins=settings.web_allowed_origins(),
            color=settings.web_widget_color(),
            request_timeout=settings.web_request_timeout(),
            response_timeout=settings.web_response_timeout(),
        )

    def rasa_url_for(self, request: Request) -> str:
        """Rasa's address for a browser that asked ``request``."""
        if self.rasa_url:
            return self.rasa_url
        host = request.url.hostname or ""
        if not _HOST.fullmatch(host):  # the Host header is the client's: keep it out of headers
            host = "localhost"
        host = f"[{host}]" if ":" in host else host
        return f"{request.url.scheme}://{host}:{self.rasa_port}"


# ------------------------------------------------------------------ security headers


def _page_policy(rasa_url: str) -> str:
    parts = urlsplit(rasa_url)
    ws = ("wss" if parts.scheme == "https" else "ws") + f"://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self' {parts.scheme}://{parts.netloc} {ws}; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    )


class EmbeddableAssetHeadersMiddleware:
    """Security headers for a server whose widget files other sites embed: ``/widget/`` and
    ``/demo/`` files may be loaded cross-origin and cached (revalidated); everything else is
    same-origin and ``no-store``. Unlike the staff console's ``SecurityHeadersMiddleware``
    (one strict policy for every page), a response may set its own content security policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asset = scope["path"].startswith(("/widget/", "/demo/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["x-content-type-options"] = "nosniff"
                headers["referrer-policy"] = "no-referrer"
                headers["cross-origin-resource-policy"] = "cross-origin" if asset else "same-origin"
                headers["cache-control"] = "no-cache" if asset else "no-store"
                headers.setdefault("content-security-policy", "default-src 'none'; frame-ancestors 'none'")
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ------------------------------------------------------------------ endpoints


def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in (WIDGET_DIR / "clinic-chat.js", WIDGET_DIR / "clinic-chat.css", DEMO_DIR / "demo.css"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(DEMO_DIR)), autoescape=True)


async def demo_page(request: Request) -> Response:
    """The fictional clinic's home page with the widget embedded; ``?lang=es``: in Spanish."""
    config: WebConfig = request.app.state.config
    profile = config.profile.get()
    rasa_url = config.rasa_url_for(request)
    language = request.query_params.get("lang", "en")
    language = language if language in DEMO_PAGES else "en"
    html = request.app.state.templates.get_template(DEMO_PAGES[language]).render(
        **config.profile.values(language),
        clinic_phone_e164=profile.phone,
        rasa_url=rasa_url,
        color=config.color,
        version=request.app.state.version,
    )
    return HTMLResponse(html, headers={"content-security-policy": _page_policy(rasa_url)})


async def socket_io_client(_: Request) -> Response:
    """socket.io's browser client, from the npm install in web/node_modules."""
    if not SOCKET_IO_CLIENT.exists():
        logger.error("web/node_modules is missing: run `make run` (or `npm ci` in web/)")
        return PlainTextResponse("socket.io client not installed (run npm ci in web/)", status_code=503)
    return FileResponse(SOCKET_IO_CLIENT, media_type="text/javascript")


async def history(request: Request) -> Response:
    """What was said so far in the widget's conversation ``session_id`` (patient, bot, staff)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_HISTORY_BODY):
        return JSONResponse({"error": "request too large"}, status_code=413)
    body = await request.body()
    if len(body) > MAX_HISTORY_BODY:
        return JSONResponse({"error": "request too large"}, status_code=413)
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # not JSON, or nested too deep
        return JSONResponse({"error": "send JSON"}, status_code=400)
    session_id = payload.get("session_id") if isinstance(payload, dict) else None
    after = payload.get("after", 0) if isinstance(payload, dict) else 0
    if not isinstance(session_id, str) or not SESSION_ID.match(session_id):
        return JSONResponse({"error": "session_id must be the widget's session token"}, status_code=400)
    # true/false are ints to Python, and the database's integers end at 2**63 - 1
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_EVENT_ID:
        return JSONResponse({"error": "after must be a non-negative integer"}, status_code=400)
    config: WebConfig = request.app.state.config
    try:
        entries = await run_in_threadpool(read_transcript, session_id, after, config.tracker_url)
    except Exception as exc:  # noqa: BLE001 - the tracker store is down or misconfigured
        logger.error("history unavailable: %s", type(exc).__name__)
        return JSONResponse({"error": "history unavailable"}, status_code=503)
    return JSONResponse(
        {"entries": [{"id": e.id, "from": SENDERS[e.sender], "text": e.text} for e in entries if e.sender in SENDERS]}
    )


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def no_content(_: Request) -> Response:
    return Response(status_code=204)


def create_app(config: WebConfig | None = None) -> Starlette:
    """Builds the web server.

    Args:
        config: settings (default: from the environment, :meth:`WebConfig.from_env`).
    """
    config = config or WebConfig.from_env()
    middleware = [Middleware(EmbeddableAssetHeadersMiddleware)]
    if config.allowed_origins:
        middleware.append(Middleware(
            CORSMiddleware, allow_origins=list(config.allowed_origins), allow_methods=["POST"],
            allow_headers=["Content-Type"], allow_credentials=False, max_age=600,
        ))
    middleware.append(Middleware(
        RequestLimitsMiddleware, max_body_bytes=MAX_REQUEST_BODY, request_timeout=config.request_timeout,
        response_timeout=config.response_timeout,
    ))
    app = Starlette(
        routes=[
            Route("/", demo_page),
            Route("/healthz", health),
            Route("/favicon.ico", no_content),
            Route("/api/history", history, methods=["POST"]),
            Route("/widget/vendor/socket.io.min.js", socket_io_client),
            Mount("/widget", StaticFiles(directory=str(WIDGET_DIR)), name="widget"),
            Mount("/demo", StaticFiles(directory=str(DEMO_DIR)), name="demo"),
        ],
        middleware=middleware,
    )
    app.state.config = config
    app.state.templates = _templates()
    app.state.version = _asset_version()
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clinic.channels.widget_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=None, help="default: WEB_PORT or 8000")
    parser.add_argument("--interface", default=None, help="default: WEB_INTERFACE or 127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    try:
        app = create_app()
    except ValueError as exc:
        print(f"Cannot start the web server: {exc}", file=sys.stderr)
        return 2
    if not SOCKET_IO_CLIENT.exists():
        print("web/node_modules is missing: the widget cannot load socket.io (run `npm ci` in web/).",
              file=sys.stderr)
    port = args.port or settings.web_port()
    interface = args.interface or settings.web_interface()
    print(f"Website chat demo: http://{interface}:{port}/", flush=True)
    # ws="none": the widget talks socket.io to Rasa, not to this server (and uvicorn's websockets
    # support does not import with the websockets version Rasa pins).
    uvicorn.run(app, host=interface, port=port, log_level="info", server_header=False, date_header=False,
                ws="none")
    return 0


if __name__ == "__main__":
    sys.exit(main())

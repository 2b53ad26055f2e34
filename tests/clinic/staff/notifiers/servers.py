"""Real local servers for the notifier tests: an HTTP receiver (webhook), a Twilio Messages API
stand-in, an SMTP server (aiosmtpd) and a self-signed TLS certificate. Everything listens on
127.0.0.1 only."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ TLS


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Writes a self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clinic test SMTP")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


# ------------------------------------------------------------------ HTTP


@dataclass
class Received:
    """One request an HTTP receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


Responder = Callable[[Received], tuple[int, dict[str, Any] | str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.server.owner.requests.append(received)
        if self.server.owner.delay:
            time.sleep(self.server.owner.delay)
        status, payload = self.server.owner.responder(received)
        data = (json.dumps(payload) if isinstance(payload, dict) else payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if isinstance(payload, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # quiet
        pass


class _Server(ThreadingHTTPServer):
    owner: HttpReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client gave up: fine
        pass


@dataclass
class HttpReceiver:
    """A real HTTP server on 127.0.0.1 recording every POST; answers what ``responder`` says
    (default 200 ``ok``, like Slack). ``stop()`` then ``start()`` brings it back on the same port."""

    responder: Responder = field(default=lambda _request: (200, "ok"))
    port: int = field(default_factory=free_port)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> HttpReceiver:
        self._server = _Server((HOST, self.port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def answer(self, status: int, payload: dict[str, Any] | str = "error") -> None:
        """Answers every later request with ``status`` and ``payload``."""
        self.responder = lambda _request: (status, payload)


# ------------------------------------------------------------------ Twilio


TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "test-auth-token-0123456789"


class TwilioStub(HttpReceiver):
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json``: checks basic auth and the
    To/From/Body fields and answers like Twilio (201 and a message resource, or an error JSON)."""

    def __init__(self, sid: str = TWILIO_SID, token: str = TWILIO_TOKEN) -> None:
        super().__init__(responder=self._messages)
        self.sid, self.token = sid, token
        self.fail_with: tuple[int, int, str] | None = None

    def messages(self) -> list[dict[str, str]]:
        """The forms of the messages Twilio accepted."""
        return [r.form() for r in self.requests if r.path == self._path and self._authorized(r)]

    @property
    def _path(self) -> str:
        return f"/2010-04-01/Accounts/{self.sid}/Messages.json"

    def _authorized(self, request: Received) -> bool:
        expected = base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def _messages(self, request: Received) -> tuple[int, dict[str, Any]]:
        if request.path != self._path:
            return 404, _twilio_error(20404, "The requested resource was not found", 404)
        if not self._authorized(request):
            return 401, _twilio_error(20003, "Authenticate", 401)
        form = request.form()
        missing = [name for name in ("To", "From", "Body") if not form.get(name)]
        if missing:
            return 400, _twilio_error(21604, f"A '{missing[0]}' parameter is required.", 400)
        if self.fail_with is not None:
            status, code, message = self.fail_with
            return status, _twilio_error(code, message, status)
        return 201, {
            "sid": "SM" + "f" * 32,
            "account_sid": self.sid,
            "to": form["To"],
            "from": form["From"],
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "date_created": "Thu, 30 Jul 2015 20:12:31 +0000",
            "date_updated": "Thu, 30 Jul 2015 20:12:31 +0000",
            "date_sent": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.sid}/Messages/SM{'f' * 32}.json",
        }


def _twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


# ------------------------------------------------------------------ SMTP


@dataclass
class Delivered:
    """One email the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


class _Capture:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's naming
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.owner.delivered.append(
            Delivered(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.ssl is not None, login)
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 keeping what it accepts.

    Args:
        starttls: offer STARTTLS with this server context (and require it).
        implicit_tls: speak TLS from the first byte with this server context.
        credentials: require AUTH with this (user, password).
    """

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.delivered: list[Delivered] = []
        self.port = free_port()
        self.credentials = credentials
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._controller = Controller(
            _Capture(self), hostname=HOST, port=self.port, ssl_context=implicit_tls,
            server_hostname="smtp.clinic.test", **kwargs,
        )

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()
        ) == self.credentials
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


# ------------------------------------------------------------------ environment

NOTIFIER_VARIABLES = (
    "STAFF_NOTIFIERS", "SLACK_WEBHOOK_URL",
    "SMTP_HOST", "SMTP_PORT", "SMTP_TLS", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_CA_FILE", "SMTP_FROM",
    "STAFF_EMAIL_TO",
    "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "ONCALL_PHONE", "TWILIO_API_BASE",
    "TWILIO_REGION", "TWILIO_EDGE",
)


def clear_notifier_environment(monkeypatch: Any) -> None:
    """No test sees a developer's notifier settings; the console link is fixed."""
    for name in NOTIFIER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONSOLE_PUBLIC_URL", "https://console.clinic.test")

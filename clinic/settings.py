"""Every deployment setting read from the environment (documented in .env.example).

Only this module reads ``os.environ``. Single values have a function each, below. Settings that
come as a group are parsed by the code they configure, from the mapping :func:`environment`
returns (tests pass their own mapping instead):

* ``STAFF_NOTIFIERS`` and each notifier's (``SLACK_*``, ``SMTP_*``, ``STAFF_EMAIL_TO``,
  ``TWILIO_*``, ``ONCALL_PHONE``): :mod:`clinic.staff.notifications`, :mod:`clinic.staff.notifiers`;
* the booking backend's (``CALCOM_*``, ``BOOKING_WEBHOOK_*``): :func:`clinic.booking.scheduling.get_scheduler`;
* the patient SMS line's (``TWILIO_*``, ``SMS_RETRY_DELAYS``), after credentials.yml's keys:
  :meth:`clinic.channels.sms.SmsLineSettings.from_sources`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CLINIC_VAR_DIR", PROJECT_DIR / "var"))
DEFAULT_WIDGET_COLOR = "#0b5e55"
LOOPBACK_INTERFACES = frozenset({"127.0.0.1", "localhost", "::1"})
_TRUE = frozenset({"1", "true", "yes"})
IPNetwork = IPv4Network | IPv6Network


def environment() -> Mapping[str, str]:
    """The process environment, for the settings read as a group (see the module's docstring)."""
    return os.environ


def _text(name: str, default: str = "") -> str:
    """The variable, stripped; ``default`` when it is unset or blank."""
    return (os.environ.get(name) or "").strip() or default


def _int(name: str, default: int) -> int:
    """The variable as a whole number; ``default`` when it is unset or blank.

    Raises:
        ValueError: it is not a whole number.
    """
    return int(_text(name) or default)


# ------------------------------------------------------------------ databases and the clinic profile


def clinic_profile_path() -> str | None:
    """``CLINIC_PROFILE``: the clinic's profile file (None: the project's clinic.yml)."""
    return _text("CLINIC_PROFILE") or None


def clinic_database_url() -> str:
    """The clinic database (escalations, bookings): SQLite under var/ unless set."""
    return os.environ.get("CLINIC_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'clinic.db'}"


def tracker_store_url() -> str:
    """Rasa's conversation store: SQLite under var/ unless set."""
    return os.environ.get("TRACKER_STORE_URL") or f"sqlite:///{VAR_DIR / 'tracker.db'}"


SQLITE_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def tracker_store_sync() -> str:
    """``TRACKER_STORE_SYNC`` (NORMAL unless set): SQLite's ``synchronous`` for the tracker store.

    Raises:
        ValueError: not one of :data:`SQLITE_SYNC_MODES`.
    """
    mode = _text("TRACKER_STORE_SYNC", "NORMAL").upper()
    if mode not in SQLITE_SYNC_MODES:
        raise ValueError(f"TRACKER_STORE_SYNC must be one of {', '.join(SQLITE_SYNC_MODES)}, not {mode!r}")
    return mode


# ------------------------------------------------------------------ Rasa and the action server


def rasa_port() -> int:
    """``RASA_PORT`` (5005): Rasa's port (REST, socket.io, HTTP API); the proxy's with several instances."""
    return _int("RASA_PORT", 5005)


def action_port() -> int:
    """``ACTION_PORT`` (5055): the action server's port."""
    return _int("ACTION_PORT", 5055)


def rasa_interface() -> str:
    """``RASA_INTERFACE`` (127.0.0.1): where Rasa (or the proxy in front of it) listens."""
    return _text("RASA_INTERFACE", "127.0.0.1")


def action_timeout_seconds() -> float:
    """``ACTION_TIMEOUT_SECONDS`` (5): how long Rasa waits for the action server to run one custom
    action; longer counts as a failed action (the patient gets the safe "please call us" reply).

    Raises:
        ValueError: not a number of seconds from 0.5 to 300.
    """
    raw = _text("ACTION_TIMEOUT_SECONDS")
    if not raw:
        return 5.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0.5 <= seconds <= 300:  # NaN fails too
        raise ValueError(f"ACTION_TIMEOUT_SECONDS must be a number of seconds from 0.5 to 300, not {raw!r}")
    return seconds


def rasa_instances() -> int:
    """``RASA_INSTANCES`` (1): how many Rasa servers the launcher starts."""
    return _int("RASA_INSTANCES", 1)


def rasa_concurrent_turns() -> int:
    """``RASA_CONCURRENT_TURNS``: messages one Rasa process works on at once, a whole number
    from 1 (default 1).

    Raises:
        ValueError: not a whole number from 1.
    """
    raw = _text("RASA_CONCURRENT_TURNS")
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"RASA_CONCURRENT_TURNS must be a whole number from 1, not {raw!r}")
    return int(raw)


def _positive_int(name: str, default: int, minimum: int) -> int:
    """The variable as a whole number from ``minimum``; ``default`` when unset or blank.

    Raises:
        ValueError: not a whole number from ``minimum``.
    """
    raw = _text(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ValueError(f"{name} must be a whole number from {minimum}, not {raw!r}")
    return int(raw)


def max_message_chars() -> int:
    """``MAX_MESSAGE_CHARS`` (4000): the longest message text the REST channel accepts (longer
    gets 413 asking for a shorter message), counted in characters without surrounding spaces.

    Raises:
        ValueError: not a whole number from 100.
    """
    return _positive_int("MAX_MESSAGE_CHARS", 4000, 100)


def rasa_max_request_bytes() -> int:
    """``RASA_MAX_REQUEST_BYTES`` (1 MiB): the largest request body Rasa's server reads (Sanic's
    ``REQUEST_MAX_SIZE``, set by the patient channels when Rasa starts); larger gets 413 unread.

    Raises:
        ValueError: not a whole number from 65536.
    """
    return _positive_int("RASA_MAX_REQUEST_BYTES", 1024 * 1024, 64 * 1024)


def rasa_request_timeout() -> int:
    """``RASA_REQUEST_TIMEOUT`` (15 s): how long Rasa's server waits for a client's request headers
    (Sanic's ``REQUEST_TIMEOUT``, without data arriving); then 408.

    Raises:
        ValueError: not a whole number from 1.
    """
    return _positive_int("RASA_REQUEST_TIMEOUT", 15, 1)


def rasa_response_timeout() -> int:
    """``RASA_RESPONSE_TIMEOUT`` (120 s): how long Rasa's server reads a body and works on an answer
    without data flowing (Sanic's ``RESPONSE_TIMEOUT``; Rasa's own default is an hour); then 503.
    Above a turn's worst case and socket.io's long-polling (25 s).

    Raises:
        ValueError: not a whole number from 30.
    """
    return _positive_int("RASA_RESPONSE_TIMEOUT", 120, 30)


def socketio_max_message_bytes() -> int:
    """``SOCKETIO_MAX_MESSAGE_BYTES`` (64 KiB): the largest socket.io message (or batch of messages
    in one long-polling request) the widget's channel reads; a larger one closes the connection.

    Raises:
        ValueError: not a whole number from 8192.
    """
    return _positive_int("SOCKETIO_MAX_MESSAGE_BYTES", 64 * 1024, 8 * 1024)


def log_hygiene_enabled() -> bool:
    """``CLINIC_LOG_HYGIENE``: scrub contact details from the action server's logs (the launcher
    sets it for the action server; ``1``, ``true`` or ``yes``)."""
    return _text("CLINIC_LOG_HYGIENE").lower() in {"1", "true", "yes"}


def rasa_url() -> str:
    """Rasa's HTTP API as the staff console reaches it (staff replies, hand-back)."""
    return os.environ.get("RASA_URL") or f"http://127.0.0.1:{rasa_port()}"


def rasa_api_token() -> str | None:
    """The token Rasa's HTTP API requires when set (``--auth-token``)."""
    return os.environ.get("RASA_API_TOKEN") or None


# ------------------------------------------------------------------ staff console


def staff_port() -> int:
    """The staff console's port."""
    return _int("STAFF_PORT", 8080)


def console_url() -> str:
    """The console's address as staff open it (links in notifications)."""
    return (os.environ.get("CONSOLE_PUBLIC_URL") or f"http://localhost:{staff_port()}").rstrip("/")


def console_interface() -> str:
    """Where the console listens (``CONSOLE_INTERFACE``, default 127.0.0.1: this machine only)."""
    return os.environ.get("CONSOLE_INTERFACE") or "127.0.0.1"


def console_insecure_cookies() -> bool:
    """``CONSOLE_INSECURE_COOKIES=1``: cookies without ``Secure``, for plain-http tests on a LAN."""
    return _text("CONSOLE_INSECURE_COOKIES").lower() in _TRUE


def staff_idle_timeout_minutes() -> int:
    """``STAFF_IDLE_TIMEOUT_MINUTES`` (30): a console session ends after this long without activity.

    Raises:
        ValueError: not a whole number from 1.
    """
    return _positive_int("STAFF_IDLE_TIMEOUT_MINUTES", 30, 1)


def staff_trusted_proxies() -> tuple[IPNetwork, ...]:
    """``STAFF_TRUSTED_PROXIES`` (``127.0.0.1,::1``): the reverse proxies in front of the console
    (a comma list of addresses or networks), whose ``X-Forwarded-For`` names the client; ``none``:
    no proxy, the peer address is the client's.

    Raises:
        ValueError: an item is not an IP address or network.
    """
    raw = _text("STAFF_TRUSTED_PROXIES", "127.0.0.1,::1")
    if raw.lower() == "none":
        return ()
    try:
        return tuple(ip_network(item.strip(), strict=False) for item in raw.split(",") if item.strip())
    except ValueError:
        raise ValueError(f"STAFF_TRUSTED_PROXIES must be IP addresses or networks, or none, not {raw!r}") from None


def console_request_timeout() -> int:
    """``CONSOLE_REQUEST_TIMEOUT`` (15 s): time a client has to send a request's body to the console; then 408.

    Raises:
        ValueError: not a whole number from 1.
    """
    return _positive_int("CONSOLE_REQUEST_TIMEOUT", 15, 1)


def console_response_timeout() -> int:
    """``CONSOLE_RESPONSE_TIMEOUT`` (60 s): time the console has to start its answer; then 503.
    Above a staff reply's call to Rasa's HTTP API.

    Raises:
        ValueError: not a whole number from 15.
    """
    return _positive_int("CONSOLE_RESPONSE_TIMEOUT", 60, 15)


# ------------------------------------------------------------------ website chat widget server


def web_port() -> int:
    """The web server's port (``WEB_PORT``, default 8000)."""
    return _int("WEB_PORT", 8000)


def web_interface() -> str:
    """Where it listens (``WEB_INTERFACE``, default 127.0.0.1)."""
    return os.environ.get("WEB_INTERFACE") or "127.0.0.1"


def web_rasa_url() -> str | None:
    """``WEB_RASA_URL``: Rasa (socket.io) as browsers reach it; None: the page's host on RASA_PORT.

    Raises:
        ValueError: not an http(s):// URL.
    """
    url = _text("WEB_RASA_URL").rstrip("/") or None
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("WEB_RASA_URL must be an http(s):// URL")
    return url


def web_allowed_origins() -> tuple[str, ...]:
    """``WEB_ALLOWED_ORIGINS``: other sites embedding the widget (a comma list), without a final ``/``."""
    listed = (os.environ.get("WEB_ALLOWED_ORIGINS") or "").split(",")
    return tuple(o.strip().rstrip("/") for o in listed if o.strip())


def web_widget_color() -> str:
    """``WEB_WIDGET_COLOR``: the demo page's widget colour.

    Raises:
        ValueError: not ``#rgb`` or ``#rrggbb``.
    """
    color = os.environ.get("WEB_WIDGET_COLOR") or DEFAULT_WIDGET_COLOR
    if not re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", color):
        raise ValueError(f"WEB_WIDGET_COLOR must be #rgb or #rrggbb (got {color!r})")
    return color


def widget_origins(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The origins whose pages may talk to Rasa from a browser (Rasa's CORS, socket.io connections):
    the web server's own pages (``localhost``, ``127.0.0.1`` and ``WEB_INTERFACE`` on ``WEB_PORT``)
    and ``WEB_ALLOWED_ORIGINS``.

    Args:
        env: the variables to read (default: this process's; the launcher passes its children's).
    """
    env = os.environ if env is None else env
    port = int((env.get("WEB_PORT") or "").strip() or 8000)
    hosts = ["localhost", "127.0.0.1"]
    interface = (env.get("WEB_INTERFACE") or "").strip()
    if interface and interface not in ("0.0.0.0", "::") and interface not in hosts:
        hosts.append(f"[{interface}]" if ":" in interface else interface)
    listed = [o.strip().rstrip("/") for o in (env.get("WEB_ALLOWED_ORIGINS") or "").split(",") if o.strip()]
    return tuple(dict.fromkeys([*(f"http://{host}:{port}" for host in hosts), *listed]))


def web_request_timeout() -> int:
    """``WEB_REQUEST_TIMEOUT`` (15 s): time a client has to send a request's body to the web server; then 408.

    Raises:
        ValueError: not a whole number from 1.
    """
    return _positive_int("WEB_REQUEST_TIMEOUT", 15, 1)


def web_response_timeout() -> int:
    """``WEB_RESPONSE_TIMEOUT`` (30 s): time the web server has to start its answer; then 503.

    Raises:
        ValueError: not a whole number from 5.
    """
    return _positive_int("WEB_RESPONSE_TIMEOUT", 30, 5)


# ------------------------------------------------------------------ several Rasa instances (production)


def redis_url() -> str | None:
    """Redis shared by several Rasa instances (``REDIS_URL``, e.g. ``redis://:password@host:6379/0``):
    Rasa's Redis lock store and the socket.io message queue. Unset: one instance, in-memory locks."""
    return _text("REDIS_URL") or None


def redis_key_prefix() -> str:
    """What this deployment's Redis keys (``<prefix>:lock:<conversation>``) and its socket.io channel
    (``<prefix>:socketio``) start with (``REDIS_KEY_PREFIX``, letters and digits; default ``clinic``),
    so several deployments or test runs can share one Redis."""
    prefix = _text("REDIS_KEY_PREFIX", "clinic")
    if not prefix.isalnum():
        raise ValueError(f"REDIS_KEY_PREFIX must be letters and digits only, not {prefix!r}")
    return prefix


def socketio_channel() -> str:
    """The Redis pub/sub channel the Rasa instances pass socket.io emits on."""
    return f"{redis_key_prefix()}:socketio"


# ------------------------------------------------------------------ the launcher


def supervisor_status_file(env: Mapping[str, str] | None = None) -> Path:
    """``SUPERVISOR_STATUS_FILE``: where the launcher records the servers it restarted, for the staff
    console's notice (default ``<CLINIC_VAR_DIR>/run/supervisor.json``).

    Args:
        env: the variables to read (default: this process's; the launcher passes its children's).
    """
    env = os.environ if env is None else env
    explicit = (env.get("SUPERVISOR_STATUS_FILE") or "").strip()
    if explicit:
        return Path(explicit)
    var_dir = (env.get("CLINIC_VAR_DIR") or "").strip()
    return (Path(var_dir) if var_dir else VAR_DIR) / "run" / "supervisor.json"


def var_dir(env: Mapping[str, str] | None = None) -> Path:
    """``CLINIC_VAR_DIR`` (the project's ``var/``): SQLite databases and the launcher's run files
    (``run/``, and nginx's configuration, pid file, temporary files and access log in ``nginx/``).

    Args:
        env: the variables to read (default: this process's; the launcher passes its children's).
    """
    env = os.environ if env is None else env
    explicit = (env.get("CLINIC_VAR_DIR") or "").strip()
    return Path(explicit) if explicit else VAR_DIR


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe for messages and logs."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<an unreadable URL>"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}{port}"))


def handoff_ack_hours() -> float:
    """``HANDOFF_ACK_HOURS`` (4): while staff hold a conversation, the patient's first message gets
    a "your message is with our team" acknowledgement, then at most one in this many hours.

    Raises:
        ValueError: not a number greater than 0.
    """
    hours = float(_text("HANDOFF_ACK_HOURS") or 4)
    if not hours > 0:
        raise ValueError("HANDOFF_ACK_HOURS must be a number of hours greater than 0")
    return hours

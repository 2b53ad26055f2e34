"""Deployment settings read from the environment (documented in .env.example)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CLINIC_VAR_DIR", PROJECT_DIR / "var"))


def clinic_database_url() -> str:
    """The clinic database (escalations, bookings): SQLite under var/ unless set."""
    return os.environ.get("CLINIC_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'clinic.db'}"


def tracker_store_url() -> str:
    """Rasa's conversation store: SQLite under var/ unless set."""
    return os.environ.get("TRACKER_STORE_URL") or f"sqlite:///{VAR_DIR / 'tracker.db'}"


def rasa_url() -> str:
    """Rasa's HTTP API as the staff console reaches it (staff replies, hand-back)."""
    return os.environ.get("RASA_URL") or f"http://127.0.0.1:{os.environ.get('RASA_PORT', '5005')}"


def rasa_api_token() -> str | None:
    """The token Rasa's HTTP API requires when set (``--auth-token``)."""
    return os.environ.get("RASA_API_TOKEN") or None


def staff_port() -> int:
    """The staff console's port."""
    return int(os.environ.get("STAFF_PORT", "8080"))


def console_url() -> str:
    """The console's address as staff open it (links in notifications)."""
    return (os.environ.get("CONSOLE_PUBLIC_URL") or f"http://localhost:{staff_port()}").rstrip("/")


# ------------------------------------------------------------------ several Rasa instances (production)

LOOPBACK_INTERFACES = frozenset({"127.0.0.1", "localhost", "::1"})


def redis_url() -> str | None:
    """Redis shared by several Rasa instances (``REDIS_URL``, e.g. ``redis://:password@host:6379/0``):
    Rasa's Redis lock store and the socket.io message queue. Unset: one instance, in-memory locks."""
    return (os.environ.get("REDIS_URL") or "").strip() or None


def redis_key_prefix() -> str:
    """What this deployment's Redis keys (``<prefix>:lock:<conversation>``) and its socket.io channel
    (``<prefix>:socketio``) start with (``REDIS_KEY_PREFIX``, letters and digits; default ``clinic``),
    so several deployments or test runs can share one Redis."""
    prefix = (os.environ.get("REDIS_KEY_PREFIX") or "").strip() or "clinic"
    if not prefix.isalnum():
        raise ValueError(f"REDIS_KEY_PREFIX must be letters and digits only, not {prefix!r}")
    return prefix


def socketio_channel() -> str:
    """The Redis pub/sub channel the Rasa instances pass socket.io emits on."""
    return f"{redis_key_prefix()}:socketio"


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

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

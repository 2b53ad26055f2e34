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

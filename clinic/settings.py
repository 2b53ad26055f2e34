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

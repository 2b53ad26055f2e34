"""Admin actions ask for the password again when it was last typed more than a few minutes ago.

A session cookie left in an unlocked browser, or stolen, should not be enough to read what
every colleague did or to manage accounts. An admin page calls :func:`confirmation_needed`
first: when the session's password was last confirmed (at sign-in, or on the confirmation
page) more than :data:`REAUTH_WINDOW` ago, it answers with a redirect to the confirmation page
(:data:`CONFIRM_PATH`), which asks for the password and then returns to the page.

Confirmations are kept in the console process's memory per session; a restart only means
the next admin page asks once more. Clinical work on escalations never asks: a colleague
taking over a crisis must not be slowed down.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clinic import clock
from clinic.staff.console.auth import principal
from clinic.staff.console.responses import json_error

REAUTH_WINDOW = timedelta(minutes=5)
CONFIRM_PATH = "/confirm-password"
MAX_SESSIONS = 10_000


class PasswordConfirmations:
    """When each console session last confirmed its password (a sign-in counts as one)."""

    def __init__(self, window: timedelta = REAUTH_WINDOW) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._at: dict[int, datetime] = {}

    def confirm(self, session_id: int, now: datetime) -> None:
        """The session's user has just typed their password."""
        with self._lock:
            if len(self._at) >= MAX_SESSIONS:
                self._at = {key: at for key, at in self._at.items() if at > now - self.window}
            self._at[session_id] = now

    def is_recent(self, session_id: int, signed_in_at: datetime, now: datetime) -> bool:
        """The password was typed (at sign-in or since) within the window."""
        with self._lock:
            last = max(signed_in_at, self._at.get(session_id, signed_in_at))
        return now - last < self.window


def confirmation_needed(request: Request) -> Response | None:
    """The redirect to the confirmation page when the session's password is not fresh, else None.

    Only for pages (GET): the confirmation page comes back to the same address.
    """
    who = principal(request)
    confirmations: PasswordConfirmations = request.app.state.console.confirmations
    if who.session_id is None or who.signed_in_at is None:
        return json_error(403, "This is only done in the console, after confirming your password.")
    if confirmations.is_recent(who.session_id, who.signed_in_at, clock.utcnow()):
        return None
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{CONFIRM_PATH}?next={quote(here, safe='/')}", status_code=303)

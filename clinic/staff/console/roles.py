"""What a signed-in account's role lets it open (:data:`clinic.staff.accounts.PERMISSIONS`).

An account without the ``conversations`` permission (a manager) reads numbers, never a patient:
:class:`RoleMiddleware` lets it reach only :data:`NUMBERS_ONLY_PATHS` and answers 403 everywhere
else, so a new page or API route is closed to it unless added here. Its home page is the insights.
Finer checks (insights for admins and managers, the unanswered list for admins) are made by the
pages themselves with :func:`require`.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from clinic.staff.accounts import CONVERSATIONS, has_permission
from clinic.staff.console.auth import principal
from clinic.staff.console.reauth import CONFIRM_PATH
from clinic.staff.console.responses import PRINCIPAL_KEY, error_response

INSIGHTS_HOME = "/insights"
NUMBERS_ONLY_PATHS = frozenset({INSIGHTS_HOME, "/api/insights", "/api/me", "/logout", CONFIRM_PATH})
FORBIDDEN = "Your account shows clinic numbers only, not conversations."


def require(request: Request, permission: str, message: str) -> None:
    """Raises 403 with ``message`` unless the request's account has ``permission``."""
    if not has_permission(principal(request).user, permission):
        raise HTTPException(403, message)


class RoleMiddleware:
    """Keeps accounts without the ``conversations`` permission to :data:`NUMBERS_ONLY_PATHS`.

    Runs inside :class:`clinic.staff.console.auth.AuthMiddleware`, which has identified the account.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = scope.get(PRINCIPAL_KEY) if scope["type"] == "http" else None
        if who is None or has_permission(who.user, CONVERSATIONS) or scope["path"] in NUMBERS_ONLY_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
            await RedirectResponse(INSIGHTS_HOME, status_code=303)(scope, receive, send)
            return
        await error_response(Request(scope), 403, FORBIDDEN)(scope, receive, send)

"""Error responses shared by the middleware, the pages and the JSON API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

PRINCIPAL_KEY = "clinic.staff.console.principal"


def wants_json(path: str) -> bool:
    """JSON answers for the API and the pages' polling endpoints (``*.json``), HTML otherwise."""
    return path == "/api" or path.startswith("/api/") or path.endswith(".json")


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: object) -> JSONResponse:
    """``{"error": message, ...}`` with the status code."""
    return JSONResponse({"error": message, **extra}, status_code=status, headers=dict(headers or {}))


def error_response(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An error as JSON or as a page, depending on the path."""
    if wants_json(request.url.path):
        return json_error(status, message, headers)
    templates = getattr(request.app.state, "templates", None) if "app" in request.scope else None
    if templates is None:  # pragma: no cover - only outside the app
        return PlainTextResponse(message, status_code=status, headers=dict(headers or {}))
    principal = request.scope.get(PRINCIPAL_KEY)
    context = {
        "status": status,
        "message": message,
        "user": principal.user if principal is not None and principal.via == "console" else None,
        "csrf_token": principal.csrf_token if principal is not None else None,
        "asset_version": request.app.state.console.asset_version,
        "nav": None,
    }
    return templates.TemplateResponse(request, "error.html", context, status_code=status, headers=headers)


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page of the signed-in console: the template with the user, CSRF token and asset version."""
    current = request.scope.get(PRINCIPAL_KEY)
    full = {
        "user": current.user if current is not None else None,
        "csrf_token": current.csrf_token if current is not None else None,
        "asset_version": request.app.state.console.asset_version,
        "nav": None,
    }
    full.update(context)
    return request.app.state.templates.TemplateResponse(request, template, full, status_code=status)

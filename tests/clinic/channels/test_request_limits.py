"""clinic.channels.request_limits: what one request may cost the Starlette servers (size, time).

Each test builds a tiny app inline, or the real web server and staff console; Rasa's (Sanic)
limits are tested on the running server in tests/integration/test_server_limits.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message

from clinic.channels.request_limits import RequestLimitsMiddleware
from clinic.channels.widget_server import WebConfig, create_app

LIMIT = 1024


async def echo(request: Request) -> Response:
    return JSONResponse({"bytes": len(await request.body())})


async def slow(_: Request) -> Response:
    await asyncio.sleep(5)
    return JSONResponse({"late": True})


def limited(request_timeout: float = 5.0, response_timeout: float = 5.0,
            max_body_bytes: int | None = LIMIT) -> Starlette:
    return Starlette(
        routes=[Route("/echo", echo, methods=["POST"]), Route("/slow", slow)],
        middleware=[Middleware(RequestLimitsMiddleware, max_body_bytes=max_body_bytes,
                               request_timeout=request_timeout, response_timeout=response_timeout)],
    )


def call(app: ASGIApp, method: str, path: str, chunks: list[bytes | float], headers: dict[str, str] | None = None
         ) -> tuple[int, dict]:
    """Runs one request through ``app``: ``chunks`` are body parts, or seconds the client pauses."""
    sent: list[Message] = []
    parts = list(chunks)

    async def receive() -> Message:
        while parts and isinstance(parts[0], float):
            await asyncio.sleep(parts.pop(0))  # type: ignore[arg-type]
        if not parts:
            await asyncio.sleep(3600)  # the client went quiet
        body = parts.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "scheme": "http",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body.startswith(b"{") else {"text": body.decode()}


# ------------------------------------------------------------------ the middleware on a tiny app


def test_a_body_within_the_limit_passes() -> None:
    assert call(limited(), "POST", "/echo", [b"x" * 600, 0.1, b"y" * 400]) == (200, {"bytes": 1000})


def test_a_declared_oversize_body_gets_413_unread() -> None:
    status, body = call(limited(), "POST", "/echo", [], headers={"content-length": str(LIMIT + 1)})
    assert status == 413 and body == {"error": "The request body is too large."}


def test_an_oversize_body_without_a_length_gets_413_while_it_streams() -> None:
    status, _ = call(limited(), "POST", "/echo", [b"x" * 800, b"x" * 800, b"never read"])
    assert status == 413


def test_a_body_that_trickles_in_past_the_request_timeout_gets_408() -> None:
    status, _ = call(limited(request_timeout=0.5), "POST", "/echo", [b"x", 0.3, b"x", 0.3, b"x"])
    assert status == 408


def test_a_client_that_never_sends_its_body_gets_408() -> None:
    status, _ = call(limited(request_timeout=0.3), "POST", "/echo", [], headers={"content-length": "10"})
    assert status == 408


def test_an_answer_not_started_in_time_gets_503() -> None:
    status, body = call(limited(response_timeout=0.3), "GET", "/slow", [b""])
    assert status == 503 and "too long" in body["error"]


def test_without_a_size_limit_the_app_decides() -> None:
    assert call(limited(max_body_bytes=None), "POST", "/echo", [b"x" * 5000]) == (200, {"bytes": 5000})


# ------------------------------------------------------------------ the web server and the staff console


@pytest.fixture
def web() -> Iterator[TestClient]:
    with TestClient(create_app(WebConfig(tracker_url="sqlite:///:memory:"))) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/api/history", "/widget/clinic-chat.js", "/nowhere"])
def test_the_web_server_refuses_an_oversize_body_anywhere(web: TestClient, path: str) -> None:
    response = web.post(path, content=b"x" * (100 * 1024))
    assert response.status_code == 413


def test_the_web_server_answers_a_slow_client_with_408() -> None:
    app = create_app(WebConfig(tracker_url="sqlite:///:memory:", request_timeout=0.3))
    status, _ = call(app, "POST", "/api/history", [b'{"session_id": ', 5.0, b'"x"}'],
                     headers={"content-type": "application/json"})
    assert status == 408


def test_the_web_server_timeouts_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_REQUEST_TIMEOUT", "7")
    monkeypatch.setenv("WEB_RESPONSE_TIMEOUT", "9")
    config = WebConfig.from_env()
    assert (config.request_timeout, config.response_timeout) == (7, 9)


def test_the_staff_console_answers_a_slow_client_with_408(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinic.db import migrate
    from clinic.staff.console.app import create_app as create_console

    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    migrate(url)
    monkeypatch.setenv("CONSOLE_REQUEST_TIMEOUT", "1")
    status, _ = call(create_console(url), "POST", "/login", [b"username=dana&", 1.5, b"password=x"],
                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert status == 408

"""Limits of every server on the real assistant: who may call Rasa from a browser, how large and
how slow a request may be.

Rasa (with the widget's web server and the staff console) runs as the launcher starts it, with
``WEB_ALLOWED_ORIGINS=https://www.example-clinic.org`` and ``RASA_REQUEST_TIMEOUT=2``. Rasa
answers browsers only from the widget's origins (CORS and socket.io connections), refuses a
socket.io message over 64 KiB, drops a client that never finishes its headers, and each server
refuses an oversize body with 413 without reading it.
"""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from clinic.launcher import Stack
from tests.integration.conftest import free_port

ALLOWED = "https://www.example-clinic.org"
OTHER = "https://evil.example"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def limited_stack(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var = tmp_path_factory.mktemp("limits")
    env = {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": f"sqlite:///{var}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{var}/tracker.db",
        "STAFF_NOTIFIERS": "",
        "WEB_ALLOWED_ORIGINS": ALLOWED,
        "RASA_REQUEST_TIMEOUT": "2",
    }
    from clinic.db import migrate

    migrate(env["CLINIC_DATABASE_URL"])
    running = Stack(model, free_port(), free_port(), env=env, log_dir=var / "logs", staff_port=free_port(),
                    web_port=free_port())
    running.start()
    yield running
    running.stop()


def _rasa(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.rasa_port}{path}"


# ------------------------------------------------------------------ browsers: CORS and socket.io origins


@pytest.mark.parametrize("origin", [ALLOWED, "http://localhost:{web}", "http://127.0.0.1:{web}"])
def test_pages_of_the_widget_origins_may_call_rasa(limited_stack: Stack, origin: str) -> None:
    origin = origin.format(web=limited_stack.web_port)
    answer = httpx.get(_rasa(limited_stack, "/socket.io/?EIO=4&transport=polling"), headers={"Origin": origin})
    assert answer.status_code == 200
    assert answer.headers.get("access-control-allow-origin") == origin


@pytest.mark.parametrize(("method", "path"), [("GET", "/socket.io/?EIO=4&transport=polling"), ("GET", "/"),
                                              ("OPTIONS", "/webhooks/rest/webhook")])
def test_another_sites_page_gets_no_cors_permission(limited_stack: Stack, method: str, path: str) -> None:
    answer = httpx.request(method, _rasa(limited_stack, path),
                           headers={"Origin": OTHER, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers


def _connect(stack: Stack, origin: str | None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(_rasa(stack, ""), headers={"Origin": origin} if origin else {}, transports=["polling"],
                   wait_timeout=10)
    return client


def test_another_sites_page_cannot_open_a_socketio_connection(limited_stack: Stack) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        _connect(limited_stack, OTHER)
    for origin in (ALLOWED, None):  # the widget's own, and a client that is not a browser
        client = _connect(limited_stack, origin)
        assert client.connected
        client.disconnect()


def test_an_oversize_socketio_message_closes_the_connection_unread(limited_stack: Stack) -> None:
    """Read on the wire (Engine.IO long polling), where the server's answer is exact: the
    python-socketio client learns of the close only at its next poll, a race under load."""
    session_id = uuid.uuid4().hex + uuid.uuid4().hex[:11]
    handshake = httpx.get(_rasa(limited_stack, "/socket.io/?EIO=4&transport=polling"), timeout=TIMEOUT)
    sid = json.loads(handshake.text[1:])["sid"]
    connection = _rasa(limited_stack, f"/socket.io/?EIO=4&transport=polling&sid={sid}")
    assert httpx.post(connection, content="40", timeout=TIMEOUT).status_code == 200  # joins the namespace
    httpx.get(connection, timeout=TIMEOUT)  # the namespace's welcome
    oversize = json.dumps(["user_uttered", {"message": "how much is an infusion? " + "x" * 70_000,
                                            "session_id": session_id}])

    assert httpx.post(connection, content="42" + oversize, timeout=TIMEOUT).status_code == 400
    assert httpx.get(connection, timeout=TIMEOUT).status_code == 400  # the connection is closed
    tracker = httpx.get(_rasa(limited_stack, f"/conversations/{session_id}/tracker"), timeout=TIMEOUT).json()
    assert [e for e in tracker["events"] if e["event"] == "user"] == []


# ------------------------------------------------------------------ size and time


def _post_oversize(port: int, path: str, size: int) -> int:
    """POSTs ``size`` bytes, streaming until the server answers or stops reading; the HTTP status."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n")
    block, sent, answer = b"x" * 65536, 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        connection.sendall(head.encode())
        while sent < size and not select.select([connection], [], [], 0)[0]:
            try:
                connection.sendall(block[: size - sent])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(block)
        while b"\r\n" not in answer:
            data = connection.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(("server", "path", "size"), [
    ("rasa", "/webhooks/rest/webhook", 2 * 1024 * 1024),
    ("rasa", "/socket.io/?EIO=4&transport=polling", 2 * 1024 * 1024),
    ("console", "/login", 100 * 1024),
    ("web", "/api/history", 100 * 1024),
    ("web", "/", 100 * 1024),
])
def test_every_server_refuses_an_oversize_body(limited_stack: Stack, server: str, path: str, size: int) -> None:
    port = {"rasa": limited_stack.rasa_port, "console": limited_stack.staff_port, "web": limited_stack.web_port}[server]
    assert _post_oversize(port, path, size) == 413


def test_rasa_drops_a_client_that_never_finishes_its_headers(limited_stack: Stack) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", limited_stack.rasa_port), timeout=TIMEOUT) as connection:
        connection.sendall(b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 10  # RASA_REQUEST_TIMEOUT=2, Sanic's default is 60


def test_rasa_logs_its_limits(limited_stack: Stack) -> None:
    log = (Path(limited_stack.log_dir or ".") / "rasa.log").read_text(encoding="utf-8", errors="replace")
    assert "requests time out after 2 s without headers (408), 120 s without an answer (503)" in log

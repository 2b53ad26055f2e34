"""clinic.rasa_api: staff replies and hand-back through Rasa's HTTP API (a local stand-in)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from clinic.rasa_api import HANDBACK_INTENT, hand_back, send_staff_reply
from clinic.staff.transcript import STAFF_METADATA_KEY


class FakeRasa:
    """Answers like Rasa's HTTP API and records what it was asked."""

    def __init__(self) -> None:
        self.channel = "socketio"
        self.status = 200
        self.token: str | None = None
        self.requests: list[dict[str, Any]] = []

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        self.requests.append({"method": method, "path": path, "query": query, "body": body})
        if self.token and query.get("token") != [self.token]:
            return 401, {"status": "failure", "reason": "NotAuthenticated", "message": "User is not authenticated."}
        if self.status != 200:
            return self.status, {"status": "failure", "message": "An unexpected error occurred."}
        return 200, {"sender_id": path.split("/")[2], "latest_input_channel": self.channel, "events": None}


@pytest.fixture
def rasa() -> Iterator[tuple[FakeRasa, str]]:
    fake = FakeRasa()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = fake.handle(method, url.path, parse_qs(url.query), body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_reply_is_appended_as_a_staff_bot_event_and_sent_on_the_latest_channel(rasa) -> None:
    fake, url = rasa

    delivery = send_staff_reply("web/abc 1", "Hi, this is Dana.", staff_name="Dana", base_url=url, token="")

    assert delivery.ok and delivery.error is None
    lookup, post = fake.requests
    assert lookup["method"] == "GET" and lookup["path"] == "/conversations/web/abc%201/tracker"
    assert post["path"] == "/conversations/web/abc%201/tracker/events"
    assert post["query"] == {"output_channel": ["latest"], "execute_side_effects": ["true"]}
    assert post["body"] == {"event": "bot", "text": "Hi, this is Dana.", "metadata": {STAFF_METADATA_KEY: "Dana"}}


def test_the_api_token_is_sent(rasa) -> None:
    fake, url = rasa
    fake.token = "s3cret"

    assert send_staff_reply("c1", "hello", staff_name="Dana", base_url=url, token="s3cret").ok
    refused = send_staff_reply("c1", "hello", staff_name="Dana", base_url=url, token="wrong")

    assert not refused.ok and "RASA_API_TOKEN" in refused.error


def test_a_channel_that_cannot_receive_pushed_messages_fails_without_recording(rasa) -> None:
    fake, url = rasa
    fake.channel = "rest"

    delivery = send_staff_reply("c1", "hello", staff_name="Dana", base_url=url, token="")

    assert not delivery.ok and "(rest) cannot receive" in delivery.error
    assert [r["method"] for r in fake.requests] == ["GET"]  # nothing appended to the transcript


def test_an_error_from_rasa_is_reported(rasa) -> None:
    fake, url = rasa
    fake.status = 500

    delivery = send_staff_reply("c1", "hello", staff_name="Dana", base_url=url, token="")

    assert not delivery.ok and delivery.error.startswith("the assistant server answered 500")


def test_an_unreachable_rasa_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there

    delivery = send_staff_reply("c1", "hello", staff_name="Dana", base_url=f"http://127.0.0.1:{port}", token="")

    assert not delivery.ok and "unreachable" in delivery.error


def test_hand_back_triggers_the_hand_back_intent(rasa) -> None:
    fake, url = rasa
    fake.channel = "rest"  # the state changes even where nothing can be pushed

    assert hand_back("c1", base_url=url, token="").ok
    [request] = fake.requests
    assert request["path"] == "/conversations/c1/trigger_intent"
    assert request["body"] == {"name": HANDBACK_INTENT}
    assert request["query"] == {"output_channel": ["latest"]}


def test_hand_back_failure_is_reported(rasa) -> None:
    fake, url = rasa
    fake.status = 404

    delivery = hand_back("c1", base_url=url, token="")

    assert not delivery.ok and "404" in delivery.error


def test_an_sms_number_is_addressed_as_it_is(rasa, sqlite_url: str) -> None:
    fake, url = rasa
    fake.channel = "twilio"

    assert send_staff_reply("+15005550006", "hello", staff_name="Dana", base_url=url, token="",
                            database_url=sqlite_url).ok

    # Rasa's router does not decode path parameters: "%2B1500..." would be another conversation.
    assert [r["path"] for r in fake.requests] == ["/conversations/+15005550006/tracker",
                                                  "/conversations/+15005550006/tracker/events"]


def test_a_reply_to_a_number_that_texted_stop_is_refused_with_the_reason(rasa, sqlite_url: str) -> None:
    from clinic.channels.sms import record_opt_in, record_opt_out

    fake, url = rasa
    fake.channel = "twilio"
    record_opt_out("+15005550006", sqlite_url)

    refused = send_staff_reply("+15005550006", "hello", staff_name="Dana", base_url=url, token="",
                               database_url=sqlite_url)

    assert not refused.ok and "opted out" in refused.error and "START" in refused.error
    assert [r["method"] for r in fake.requests] == ["GET"]  # nothing recorded or sent

    record_opt_in("+15005550006", sqlite_url)
    assert send_staff_reply("+15005550006", "hello", staff_name="Dana", base_url=url, token="",
                            database_url=sqlite_url).ok


def test_an_unreadable_opt_out_state_refuses_rather_than_risks_a_text(rasa, tmp_path) -> None:
    fake, url = rasa
    fake.channel = "twilio"

    refused = send_staff_reply("+15005550006", "hello", staff_name="Dana", base_url=url, token="",
                               database_url=f"sqlite:///{tmp_path}/not-migrated.db")

    assert not refused.ok and "could not be checked" in refused.error

"""addons.rest_channel: the REST webhook's token, request checks, namespaces, limits and commands.

Each test talks HTTP to a small Sanic server with the channel's blueprint (Sanic's real HTTP
protocol, so the request size limit is Sanic's own) and a recording stand-in for Rasa's agent.
The channel through the real Rasa server: tests/integration/test_channel_ids.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from addons.rest_channel import (
    ALLOWED_METADATA_KEYS,
    MAX_METADATA_BYTES,
    ClinicRestInput,
)
from tests.clinic.staff.notifiers.servers import free_port

TOKEN = "rest-test-token-0123456789"
MAX_CHARS = 4000
MAX_REQUEST_BYTES = 64 * 1024
WIDGET_SESSION = "Zx3_kP9-QmW2vT8rLc5NbY1aHs7Ud4Ej6Gf0Io2KpRq"  # 43 URL-safe characters, as the widget makes


class ChannelServer:
    """A Sanic app with the channel at /webhooks/rest, in a thread; records the messages passed on."""

    def __init__(self, channel: ClinicRestInput) -> None:
        self.channel = channel
        self.received: list[UserMessage] = []
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        # Sanic rewrites some of its own methods when an app starts ("touch-up"); in test mode it
        # keeps the originals, so that another app can start in this process too.
        Sanic.test_mode = True
        self.app = Sanic(f"rest_channel_test_{uuid.uuid4().hex}")
        self.app.ctx.agent = SimpleNamespace(tracker_store=self.tracker_store)
        self.app.blueprint(channel.blueprint(self._assistant), url_prefix="/webhooks/rest")
        self.thread.start()
        self.server = self._run(self._start())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    async def _start(self) -> Any:
        server = await self.app.create_server(host="127.0.0.1", port=self.port, return_asyncio_server=True,
                                              access_log=False)
        await server.startup()
        await server.before_start()
        await server.after_start()
        return server

    async def _stop(self) -> None:
        await self.server.before_stop()
        self.server.close()
        await self.server.wait_closed()
        await self.server.after_stop()

    def stop(self) -> None:
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _assistant(self, message: UserMessage) -> None:
        self.received.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"Got: {message.text}")

    def offer(self, sender: str, buttons: list[dict[str, str]]) -> None:
        """Stores a conversation whose last bot message offered ``buttons``."""
        tracker = DialogueStateTracker.from_events(sender, [
            ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}),
            BotUttered("Choose:", data={"buttons": buttons}),
        ])
        self._run(self.tracker_store.save(tracker))

    def post(self, body: Any = None, *, content: bytes | None = None, params: dict[str, str] | None = None,
             headers: dict[str, Any] | None = None) -> httpx.Response:
        data = content if content is not None else json.dumps(body).encode()
        return httpx.post(self.url, content=data, params=params, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[ChannelServer]:
    running = ChannelServer(ClinicRestInput(token=None, max_message_chars=MAX_CHARS,
                                            max_request_bytes=MAX_REQUEST_BYTES))
    yield running
    running.stop()


@pytest.fixture
def rest(server: ChannelServer) -> ChannelServer:
    """The channel without RASA_API_TOKEN."""
    server.channel.token = None
    server.received.clear()
    return server


@pytest.fixture
def rest_with_token(server: ChannelServer) -> Iterator[ChannelServer]:
    """The channel with RASA_API_TOKEN set."""
    server.channel.token = TOKEN
    server.received.clear()
    yield server
    server.channel.token = None


def sender() -> str:
    return f"rest-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------ a message that is accepted


def test_a_message_reaches_the_assistant_and_the_replies_come_back(rest: ChannelServer) -> None:
    who = sender()

    answer = rest.post({"sender": who, "message": "how much is an infusion?"})

    assert answer.status_code == 200
    assert answer.json() == [{"recipient_id": who, "text": "Got: how much is an infusion?"}]
    [message] = rest.received
    assert (message.sender_id, message.text, message.input_channel) == (who, "how much is an infusion?", "rest")


@pytest.mark.parametrize(("header", "message_id"), [
    ("0f3c9a1e5b7d4f2a8c6e1b3d5f7a9c0e", "request-0f3c9a1e5b7d4f2a8c6e1b3d5f7a9c0e"),
    ("abc-123:x_y.z", "request-abc-123:x_y.z"),
], ids=["nginx request id", "client key"])
def test_a_request_id_header_becomes_the_message_id(rest: ChannelServer, header: str, message_id: str) -> None:
    assert rest.post({"sender": sender(), "message": "hi"}, headers={"X-Request-ID": header}).status_code == 200

    [message] = rest.received
    assert message.message_id == message_id


@pytest.mark.parametrize("header", [None, "", "has space", "semi;colon", "x" * 129, "caf\u00e9".encode()],
                         ids=["none", "empty", "space", "semicolon", "129 characters", "non-ascii"])
def test_without_a_usable_request_id_the_message_gets_rasas_own_id(rest: ChannelServer,
                                                                   header: str | bytes | None) -> None:
    headers = {"X-Request-ID": header} if header is not None else None
    assert rest.post({"sender": sender(), "message": "hi"}, headers=headers).status_code == 200

    [message] = rest.received
    assert message.message_id and not message.message_id.startswith("request-")


def test_the_health_check_answers(rest: ChannelServer) -> None:
    assert httpx.get(rest.url.removesuffix("webhook"), timeout=10).json() == {"status": "ok"}


def test_replies_can_be_streamed(rest: ChannelServer) -> None:
    answer = rest.post({"sender": sender(), "message": "hi"}, params={"stream": "true"})

    assert answer.status_code == 200
    assert [json.loads(line)["text"] for line in answer.text.splitlines()] == ["Got: hi"]


def test_the_body_cannot_choose_another_input_channel(rest: ChannelServer) -> None:
    rest.post({"sender": sender(), "message": "hi", "input_channel": "twilio"})

    assert [m.input_channel for m in rest.received] == ["rest"]


@pytest.mark.parametrize("who", [
    "me", "eval-" + uuid.uuid4().hex, "rest-abc_DEF.1:2", "nurse@example.org", "15551234567", "a" * 128,
    str(uuid.uuid4()),  # with dashes: not the web chat's form
])
def test_ids_outside_other_channels_namespaces_are_accepted(rest: ChannelServer, who: str) -> None:
    assert rest.post({"sender": who, "message": "hi"}).status_code == 200
    assert [m.sender_id for m in rest.received] == [who]


def test_an_empty_message_is_passed_on_for_the_assistant_to_ask_again(rest: ChannelServer) -> None:
    assert rest.post({"sender": sender(), "message": "   "}).status_code == 200
    assert len(rest.received) == 1


# ------------------------------------------------------------------ the token


@pytest.mark.parametrize(("params", "headers"), [
    ({"token": TOKEN}, {}),
    ({}, {"Authorization": f"Bearer {TOKEN}"}),
    ({}, {"Authorization": f"bearer  {TOKEN}"}),
])
def test_with_a_token_set_a_request_carrying_it_is_accepted(rest_with_token: ChannelServer,
                                                            params: dict[str, str], headers: dict[str, str]) -> None:
    answer = rest_with_token.post({"sender": sender(), "message": "hi"}, params=params, headers=headers)

    assert answer.status_code == 200 and len(rest_with_token.received) == 1


@pytest.mark.parametrize(("params", "headers"), [
    ({}, {}),
    ({"token": "wrong"}, {}),
    ({"token": ""}, {}),
    ({}, {"Authorization": "Bearer wrong"}),
    ({}, {"Authorization": f"Basic {TOKEN}"}),
    ({}, {"Authorization": "Bearer"}),
    ({"token": TOKEN[:-1]}, {}),
])
def test_with_a_token_set_a_request_without_it_gets_401_and_is_not_passed_on(
        rest_with_token: ChannelServer, params: dict[str, str], headers: dict[str, str]) -> None:
    answer = rest_with_token.post({"sender": sender(), "message": "hi"}, params=params, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["reason"] == "unauthorized" and "token" in answer.json()["error"]
    assert rest_with_token.received == []


def test_the_token_is_checked_before_the_body(rest_with_token: ChannelServer) -> None:
    assert rest_with_token.post(content=b"[1, 2]").status_code == 401


# ------------------------------------------------------------------ malformed requests: 400


@pytest.mark.parametrize("content", [
    b"", b"not json", b"[]", b'[{"sender": "a", "message": "hi"}]', b"null", b"42", b'"hi"', b"true",
    b"\xff\xfe\x00", b"[" * 50_000,
], ids=["empty", "not json", "array", "array of a message", "null", "number", "string", "true",
        "not utf-8", "nested too deep"])
def test_a_body_that_is_not_a_json_object_gets_400(rest: ChannelServer, content: bytes) -> None:
    answer = rest.post(content=content)

    assert answer.status_code == 400 and "JSON object" in answer.json()["error"]
    assert rest.received == []


@pytest.mark.parametrize("body", [
    {"message": "hi"},
    {"sender": None, "message": "hi"},
    {"sender": "", "message": "hi"},
    {"sender": 42, "message": "hi"},
    {"sender": ["a"], "message": "hi"},
    {"sender": {"id": "a"}, "message": "hi"},
    {"sender": "a" * 129, "message": "hi"},
    {"sender": "two words", "message": "hi"},
    {"sender": "../etc/passwd", "message": "hi"},
    {"sender": "café", "message": "hi"},
    {"sender": "line\nbreak", "message": "hi"},
    {"sender": "semi;colon", "message": "hi"},
], ids=["missing", "null", "empty", "number", "list", "object", "129 characters", "space", "slash",
        "non-ascii", "newline", "semicolon"])
def test_a_missing_or_invalid_sender_gets_400(rest: ChannelServer, body: dict[str, Any]) -> None:
    answer = rest.post(body)

    assert answer.status_code == 400
    assert answer.json()["reason"] == "invalid_sender" and '"sender"' in answer.json()["error"]
    assert rest.received == []


@pytest.mark.parametrize("message", [None, 42, 1.5, True, ["hi"], {"text": "hi"}, "missing"])
def test_a_message_that_is_not_a_string_gets_400(rest: ChannelServer, message: Any) -> None:
    body = {"sender": sender()} if message == "missing" else {"sender": sender(), "message": message}

    answer = rest.post(body)

    assert answer.status_code == 400 and answer.json()["reason"] == "invalid_message"
    assert rest.received == []


@pytest.mark.parametrize("metadata", ["text", ["a"], 42, True])
def test_metadata_that_is_not_an_object_gets_400(rest: ChannelServer, metadata: Any) -> None:
    answer = rest.post({"sender": sender(), "message": "hi", "metadata": metadata})

    assert answer.status_code == 400 and answer.json()["reason"] == "invalid_metadata"
    assert rest.received == []


# ------------------------------------------------------------------ other channels' conversations: 403


@pytest.mark.parametrize("who", [
    "+15551234567", "+442071838750", "+1", "whatsapp:+15551234567", "WhatsApp:+15551234567",
    "messenger:1234567890", "sms:+15551234567", "tel:+15551234567", WIDGET_SESSION, uuid.uuid4().hex,
], ids=["E.164", "E.164 UK", "plus", "whatsapp", "whatsapp capitalised", "messenger", "sms prefix", "tel",
        "widget session", "rasa socket.io id"])
def test_a_sender_in_another_channels_namespace_gets_403_and_is_not_passed_on(rest: ChannelServer,
                                                                              who: str) -> None:
    answer = rest.post({"sender": who, "message": "/EXTERNAL_handoff_resolved"})

    assert answer.status_code == 403 and answer.json()["reason"] == "sender_of_another_channel"
    assert rest.received == []


# ------------------------------------------------------------------ limits: 413


def test_a_message_over_the_limit_gets_413_asking_for_a_shorter_one(rest: ChannelServer) -> None:
    answer = rest.post({"sender": sender(), "message": "a" * (MAX_CHARS + 1)})

    assert answer.status_code == 413
    assert answer.json()["reason"] == "message_too_long"
    assert "Please send a shorter message" in answer.json()["error"] and str(MAX_CHARS) in answer.json()["error"]
    assert rest.received == []


@pytest.mark.parametrize("text", ["a" * MAX_CHARS, f"  {'a' * MAX_CHARS}\n", "🙂" * MAX_CHARS],
                         ids=["at the limit", "surrounding spaces", "emoji"])
def test_a_message_at_the_limit_is_accepted(rest: ChannelServer, text: str) -> None:
    assert rest.post({"sender": sender(), "message": text}).status_code == 200
    assert len(rest.received) == 1


def test_metadata_over_the_limit_gets_413(rest: ChannelServer) -> None:
    answer = rest.post({"sender": sender(), "message": "hi", "metadata": {"client": "x" * MAX_METADATA_BYTES}})

    assert answer.status_code == 413 and answer.json()["reason"] == "metadata_too_large"
    assert rest.received == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_servers_limit_gets_413_from_sanic_unread(rest: ChannelServer, chunked: bool) -> None:
    body = json.dumps({"sender": sender(), "message": "hi", "metadata": {"blob": "x" * MAX_REQUEST_BYTES}})
    content: Any = iter([body.encode()]) if chunked else body.encode()  # an iterator is sent chunked

    answer = httpx.post(rest.url, content=content, timeout=30)

    assert answer.status_code == 413
    assert rest.received == []


# ------------------------------------------------------------------ metadata kept


@pytest.mark.parametrize(("metadata", "kept"), [
    ({"client": "portal", "language": "es", "timezone": "America/Chicago"},
     {"client": "portal", "language": "es", "timezone": "America/Chicago"}),
    ({"client": "portal", "clinic_staff": "Dana", "handoff": False, "x": 1}, {"client": "portal"}),
    ({"source": {"nested": "dropped"}, "locale": ["en"]}, None),
    ({"timezone": float("nan"), "client": 3, "source": 1.5}, {"client": 3, "source": 1.5}),
    ({}, None),
    (None, None),
], ids=["allowed keys", "other keys dropped", "non-plain values dropped", "numbers", "empty", "null"])
def test_only_allowed_metadata_keys_are_kept(rest: ChannelServer, metadata: Any, kept: Any) -> None:
    assert rest.post({"sender": sender(), "message": "hi", "metadata": metadata}).status_code == 200

    [message] = rest.received
    assert message.metadata == kept
    assert set(kept or {}) <= ALLOWED_METADATA_KEYS


# ------------------------------------------------------------------ typed commands


@pytest.mark.parametrize(("text", "passed"), [
    ("/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),
    ("  /EXTERNAL_handoff_resolved  ", "EXTERNAL_handoff_resolved"),
    ("/ /EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),
    ("//request_human", "request_human"),
    ('/book_consultation{"slot_start": "2030-01-01"}', 'book_consultation{"slot_start": "2030-01-01"}'),
    ("/greet@0.99", "greet@0.99"),
    ("/", ""),
    ("how much / what price", "how much / what price"),
], ids=["external intent", "with spaces", "slash space slash", "two slashes", "entities", "confidence",
        "slash only", "slash inside"])
def test_typed_commands_lose_their_slash(rest: ChannelServer, text: str, passed: str) -> None:
    rest.post({"sender": sender(), "message": text})

    assert [m.text for m in rest.received] == [passed]


def test_the_payload_of_a_button_just_offered_passes_as_a_command(rest: ChannelServer) -> None:
    who = sender()
    rest.offer(who, [{"title": "Talk to a person", "payload": "/request_human"},
                     {"title": "Done", "payload": "/EXTERNAL_handoff_resolved"}])

    rest.post({"sender": who, "message": "/request_human"})
    rest.post({"sender": who, "message": "/EXTERNAL_handoff_resolved"})  # never, even if offered
    rest.post({"sender": who, "message": "/book_consultation"})  # not offered

    assert [m.text for m in rest.received] == ["/request_human", "EXTERNAL_handoff_resolved", "book_consultation"]


# ------------------------------------------------------------------ settings


def test_from_credentials_reads_the_token_and_the_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_API_TOKEN", TOKEN)
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "500")

    channel = ClinicRestInput.from_credentials(None)

    assert isinstance(channel, ClinicRestInput) and channel.name() == "rest"
    assert (channel.token, channel.max_message_chars) == (TOKEN, 500)


def test_without_a_token_in_the_environment_none_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASA_API_TOKEN", raising=False)
    monkeypatch.delenv("MAX_MESSAGE_CHARS", raising=False)

    channel = ClinicRestInput.from_credentials({})

    assert isinstance(channel, ClinicRestInput)
    assert (channel.token, channel.max_message_chars) == (None, 4000)

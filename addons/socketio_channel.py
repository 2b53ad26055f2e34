"""Rasa glue: the website widget's socket.io channel (Rasa's, with three additions).

Configured in credentials.yml as ``addons.socketio_channel.ClinicSocketIOInput`` (same options
as Rasa's ``socketio``; its name stays ``socketio``, so staff replies and analytics see the same
channel). Compared with Rasa's connector:

* Staff replies (bot events with ``clinic_staff`` metadata, see :mod:`clinic.rasa_api`) are
  emitted with ``"clinic_team": true`` so the widget labels them; the staff name is not sent.
* After every turn, and when a browser (re)joins its session, a ``clinic_state`` event tells
  the widget whether staff hold the conversation (the tracker's ``handoff`` slot) and that the
  assistant has finished answering (``"after": "turn"``). For messages
  pushed through Rasa's HTTP API (staff replies, hand-back) the state is read once Rasa has
  saved the tracker, by queueing for the conversation's lock.
* A socket may only write to a session it joined with ``session_request`` (Rasa accepts any
  ``session_id`` in a message), and ``enter_room`` is awaited when the installed python-socketio
  makes it a coroutine (5.10+), so rooms are joined with either version.
* A typed "/intent" is not a command: only the payloads of the buttons just offered pass
  (:func:`clinic.channels.patient_input.only_offered_payloads`, shared with the SMS and REST
  channels), so a patient cannot trigger e.g. the hand-back intent.
* A browser may connect only from the widget's origins (:func:`clinic.settings.widget_origins`,
  the same list as Rasa's CORS): CORS alone would not stop another site's page from opening a
  WebSocket. Clients that send no ``Origin`` (servers, tests) are not browsers and may connect.
* A message (or a long-polling request's batch) larger than ``SOCKETIO_MAX_MESSAGE_BYTES``
  (64 KiB) closes the connection; the Rasa server's limits (:mod:`clinic.channels.request_limits`)
  apply to its requests.
* With ``REDIS_URL`` set (several Rasa instances), emits go through Redis pub/sub
  (:class:`JsonRedisManager`, channel ``<REDIS_KEY_PREFIX>:socketio``), so a message sent by any
  instance (a staff reply through the HTTP API of another one) reaches the browser wherever it is
  connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import rasa.core.channels.channel
from engineio import AsyncServer as EngineIOServer
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncRedisManager, AsyncServer

from addons.handoff_policy import HANDOFF_SLOT
from clinic.channels.patient_input import only_offered_payloads
from clinic.channels.request_limits import limit_request_size, limit_request_time
from clinic.settings import redis_url, socketio_channel, socketio_max_message_bytes, widget_origins
from clinic.staff.transcript import STAFF_METADATA_KEY

logger = logging.getLogger(__name__)

STATE_EVENT = "clinic_state"
CLINIC_TEAM_FLAG = "clinic_team"
# Session ids the widget makes are 43 random URL-safe characters; Rasa's default is a uuid4 hex.
SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{16,128}$")
LOCK_POLL_SECONDS = 0.05
CLOSE_DELIVERY_SECONDS = 1.0  # how long a refused long-polling POST waits for the client to take the close packet


def offered_buttons(tracker: DialogueStateTracker | None, latest_only: bool = False) -> list[dict[str, Any]]:
    """The buttons of the assistant's messages since the patient's last message (oldest first).

    Args:
        tracker: the conversation (None: no buttons).
        latest_only: only the last message that had buttons (SMS numbers each message's own).
    """
    buttons: list[dict[str, Any]] = []
    for event in reversed(tracker.events if tracker is not None else []):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            own = list(event.data.get("buttons") or event.data.get("quick_replies") or [])
            if own and latest_only:
                return own
            buttons[:0] = own
    return buttons


class _SessionCheckingEngineIOServer(EngineIOServer):
    """engine.io's server, answering the long-polling requests python-engineio 4.7 fails on:

    * a POST without a session id (``sid``): 400 (engine.io fails building its error message: 500);
    * a request for a session its client closed (a close packet): 400 (engine.io: 500);
    * a refused POST (too large, an unknown packet): engine.io closes the session and answers 400,
      but first waits for the client's poll to take the close packet, which a client that is not
      polling never does: the POST hung until it timed out. Here it waits at most
      :data:`CLOSE_DELIVERY_SECONDS` (a browser's poll is pending and takes it at once).
    """

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        request = args[0] if args else None
        if isinstance(request, Request):
            sid = request.args.get("sid")
            if request.method == "POST" and not sid:
                return response.text("Invalid session", status=400)
            socket = self.sockets.get(sid) if sid else None
            if socket is not None and socket.closed:
                del self.sockets[sid]  # an unknown session to engine.io from now on
        return await super().handle_request(*args, **kwargs)

    async def disconnect(self, sid: str | None = None) -> None:
        socket = self.sockets.get(sid) if sid is not None else None
        if socket is None:  # every session (shutdown), or one already gone
            await super().disconnect(sid)
            return
        with contextlib.suppress(asyncio.TimeoutError):  # closed by then; only the close packet is waiting
            await asyncio.wait_for(socket.close(), CLOSE_DELIVERY_SECONDS)
        self.sockets.pop(sid, None)


class _SocketIOServer(AsyncServer):
    """python-socketio's server on :class:`_SessionCheckingEngineIOServer`."""

    def _engineio_server_class(self) -> type[EngineIOServer]:
        return _SessionCheckingEngineIOServer


class JsonRedisManager(AsyncRedisManager):
    """python-socketio's Redis client manager passing JSON instead of pickles.

    The stock manager unpickles whatever arrives on its channel: anyone able to publish to the
    Redis server could run code in Rasa. Emits here are plain JSON data (texts, buttons, the
    hand-off state), so JSON is all that is sent and accepted.
    """

    async def _publish(self, data: dict[str, Any]) -> Any:
        import redis.exceptions

        payload = json.dumps(data, default=str)
        for attempt in ("retrying", "giving up"):
            try:
                return await self.redis.publish(self.channel, payload)
            except redis.exceptions.RedisError as exc:
                logger.error("cannot publish a socket.io message to Redis (%s); %s", type(exc).__name__, attempt)
                self._redis_connect()
        return None

    async def _listen(self) -> Any:  # yields dicts: the base class then never unpickles
        async for message in super()._listen():
            try:
                data = json.loads(message)
            except (TypeError, ValueError):
                logger.warning("ignored a socket.io message from Redis that is not JSON")
                continue
            if isinstance(data, dict):
                yield data


def client_manager() -> JsonRedisManager | None:
    """Redis pub/sub shared by the Rasa instances when ``REDIS_URL`` is set; None: this process only."""
    url = redis_url()
    return JsonRedisManager(url, channel=socketio_channel()) if url else None


def _subscribe_to_redis_at_start(blueprint: Blueprint, sio: AsyncServer) -> None:
    """Subscribes to Redis when the server starts (python-socketio would on the first connection,
    and could miss the first messages published meanwhile)."""

    @blueprint.listener("after_server_start")
    async def listen_to_redis(_app: Sanic, _loop: Any) -> None:
        if not sio.manager_initialized:
            sio.manager_initialized = True
            sio.manager.initialize()


def _requested_session_id(data: Any) -> str:
    """The session id a ``session_request`` asks for when it is acceptable, else a new one."""
    requested = (data or {}).get("session_id") if isinstance(data, dict) else None
    return requested if isinstance(requested, str) and SESSION_ID.match(requested) else uuid.uuid4().hex


def _metadata_of(raw: Any) -> dict[str, Any]:
    """A message's metadata: its ``language`` (en | es) from a dict or a JSON object in a string."""
    metadata = raw or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            metadata = {}
    if not isinstance(metadata, dict):
        return {}
    # the widget sends only its page's language; nothing else a browser sends is stored
    language = metadata.get("language")
    return {"language": language} if language in ("en", "es") else {}


class _AppCapturingBlueprint(SocketBlueprint):
    """Rasa's socket.io blueprint that also hands the Sanic app (and so the agent) to the channel."""

    def __init__(self, on_register: Callable[[Sanic], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ctx.on_register = on_register  # Sanic blueprints only take attributes on ``ctx``

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        self.ctx.on_register(app)
        super().register(app, options)


class ClinicSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output, marking staff replies and reporting the hand-off state."""

    def __init__(self, sio: AsyncServer, bot_message_evt: str, channel: ClinicSocketIOInput | None = None,
                 report_state_after_turn: bool = False) -> None:
        """Args:
            sio: the server.
            bot_message_evt: the event bot messages are emitted as.
            channel: the input channel (reads the hand-off state); None: no state reports.
            report_state_after_turn: after the first message, report the state once the
                conversation's current processing has finished (messages pushed by the HTTP API).
        """
        super().__init__(sio, bot_message_evt)
        self._channel = channel
        self._report_state = report_state_after_turn and channel is not None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends text; a staff reply is emitted in one piece with ``clinic_team: true``."""
        if kwargs.get(STAFF_METADATA_KEY):
            await self._send_message(recipient_id, {"text": text.strip(), CLINIC_TEAM_FLAG: True})
        else:
            await super().send_text_message(recipient_id, text, **kwargs)
        self._schedule_state_report(recipient_id)

    async def send_text_with_buttons(self, recipient_id: str, text: str, buttons: list[dict[str, Any]],
                                     **kwargs: Any) -> None:
        await super().send_text_with_buttons(recipient_id, text, buttons, **kwargs)
        self._schedule_state_report(recipient_id)

    def _schedule_state_report(self, recipient_id: str) -> None:
        if self._report_state and self._channel is not None:
            self._report_state = False  # once per pushed batch
            self._channel.report_state_later(recipient_id)


class ClinicSocketIOInput(SocketIOInput):
    """Rasa's socket.io input channel with staff labels, hand-off state and session checks."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app: Sanic | None = None

    def _agent(self) -> Any:
        return getattr(self._app.ctx, "agent", None) if self._app is not None else None

    def get_output_channel(self) -> OutputChannel | None:
        """The output for messages pushed through Rasa's HTTP API (staff replies, hand-back)."""
        if self.sio is None:
            return super().get_output_channel()  # warns, returns None
        return ClinicSocketIOOutput(self.sio, self.bot_message_evt, self, report_state_after_turn=True)

    async def _tracker(self, session_id: str) -> DialogueStateTracker | None:
        agent = self._agent()
        if agent is None or agent.tracker_store is None:
            return None
        return await agent.tracker_store.retrieve(session_id)

    async def handoff_state(self, session_id: str) -> bool:
        """Whether staff hold the conversation (False when unknown or new)."""
        tracker = await self._tracker(session_id)
        return bool(tracker is not None and tracker.get_slot(HANDOFF_SLOT))

    async def report_state(self, session_id: str, after: str) -> None:
        """Emits ``clinic_state`` to the session's room (never raises: it is informational).

        Args:
            session_id: the conversation.
            after: what prompted it: ``turn`` (the assistant finished answering a message: the
                widget stops its typing indicator), ``join`` (a browser joined the session) or
                ``push`` (staff or the API sent messages).
        """
        if self.sio is None:
            return
        try:
            handoff = await self.handoff_state(session_id)
            await self.sio.emit(STATE_EVENT, {"handoff": handoff, "after": after}, room=session_id,
                                namespace=self.namespace)
        except Exception:  # noqa: BLE001 - a failed report must not break a conversation
            logger.exception("could not report the conversation state to the widget")

    def report_state_later(self, session_id: str) -> None:
        """Reports the state once whatever holds the conversation's lock has saved the tracker."""
        agent = self._agent()
        if agent is None or self.sio is None:
            return

        async def after_lock() -> None:
            try:
                async with agent.lock_store.lock(session_id, wait_time_in_seconds=LOCK_POLL_SECONDS):
                    pass
            except Exception:  # noqa: BLE001 - e.g. an expired lock: report what is stored
                logger.debug("waiting for the conversation lock failed", exc_info=True)
            await self.report_state(session_id, "push")

        self.sio.start_background_task(after_lock)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's socket.io blueprint with the additions described in the module docstring."""
        # cors_allowed_origins=[]: Rasa's CORS (``--cors``) answers browsers; origins are checked on connect.
        sio = _SocketIOServer(async_mode="sanic", cors_allowed_origins=[], client_manager=client_manager(),
                              max_http_buffer_size=socketio_max_message_bytes())
        socketio_webhook = _AppCapturingBlueprint(self._set_app, sio, self.socketio_path, "socketio_webhook",
                                                  __name__)
        self.sio = sio

        limit_request_size(socketio_webhook)
        limit_request_time(socketio_webhook)
        if isinstance(sio.manager, JsonRedisManager):
            _subscribe_to_redis_at_start(socketio_webhook, sio)

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        self._on_connections(sio)
        self._on_session_requests(sio)
        self._on_user_messages(sio, on_new_message)
        return socketio_webhook

    def _on_connections(self, sio: AsyncServer) -> None:
        """Accepts a connection from a widget origin (with a valid token when a JWT key is set);
        logs disconnections."""
        namespace = self.namespace
        origins = frozenset(widget_origins())

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: dict, auth: dict | None) -> bool:
            origin = environ.get("HTTP_ORIGIN")
            if origin is not None and origin.rstrip("/") not in origins:
                logger.warning("socket.io connection from %r refused: not one of the widget's origins", origin[:200])
                return False
            if not self.jwt_key:
                return True
            token = (auth or {}).get("token")
            payload = token and rasa.core.channels.channel.decode_bearer_token(token, self.jwt_key, self.jwt_algorithm)
            return bool(payload)

        @sio.on("disconnect", namespace=namespace)
        async def disconnect(sid: str) -> None:
            logger.debug("socket.io client disconnected")

    def _on_session_requests(self, sio: AsyncServer) -> None:
        """Joins the socket to the session it asks for (a new one when its id is not acceptable)."""
        namespace = self.namespace

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: dict | None) -> None:
            session_id = _requested_session_id(data)
            if self.session_persistence:
                joined = sio.enter_room(sid, session_id, namespace=namespace)
                if inspect.isawaitable(joined):  # python-socketio >= 5.10
                    await joined
            await sio.emit("session_confirm", session_id, room=sid, namespace=namespace)
            if self.session_persistence:
                await self.report_state(session_id, "join")

    def _on_user_messages(self, sio: AsyncServer, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Passes a patient's message to Rasa (only offered "/" payloads), then reports the state."""
        namespace = self.namespace

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: dict) -> None:
            if not isinstance(data, dict):
                return
            sender_id = self._sender_of(sio, sid, data)
            if sender_id is None:
                return
            metadata = _metadata_of(data.get(self.metadata_key))
            output = ClinicSocketIOOutput(sio, self.bot_message_evt, self)
            message = str(data.get("message") or "")
            try:
                if message.strip().startswith("/"):
                    message = only_offered_payloads(message, offered_buttons(await self._tracker(sender_id)))
                if message:
                    await on_new_message(
                        UserMessage(message, output, sender_id, input_channel=self.name(), metadata=metadata)
                    )
            finally:  # the widget's typing indicator ends with this, whatever happened
                if self.session_persistence:
                    await self.report_state(sender_id, "turn")

    def _sender_of(self, sio: AsyncServer, sid: str, data: dict) -> str | None:
        """The conversation a message is for: with session persistence, a session this socket joined
        (None, logged, for any other); without, the socket itself."""
        if not self.session_persistence:
            return sid
        sender_id = data.get("session_id")
        if not isinstance(sender_id, str) or sender_id not in sio.rooms(sid, namespace=self.namespace):
            logger.warning("socket.io message ignored: its session was not requested on this socket")
            return None
        return sender_id

    def _set_app(self, app: Sanic) -> None:
        self._app = app

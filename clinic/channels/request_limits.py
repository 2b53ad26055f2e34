"""What one request may cost each server: its body's size and the time to send and answer it.

Sanic's defaults would let one request fill the tracker store (``REQUEST_MAX_SIZE`` 100 MB: a
60 MB ``metadata`` grew it by about 500 MB) and hold a connection for an hour (Rasa sets
``RESPONSE_TIMEOUT`` to 3600 s). The patient channels' blueprints set the Rasa app's limits when
the server starts, so they apply however Rasa is started (the launcher, a systemd unit, a
Procfile) and to every route of that server (the channels and the HTTP API), never to the
action server, whose requests carry whole conversations:

* :func:`limit_request_size`: ``RASA_MAX_REQUEST_BYTES`` (1 MiB); a larger body gets 413 unread.
* :func:`limit_request_time`: ``RASA_REQUEST_TIMEOUT`` (15 s for the headers, 408) and
  ``RASA_RESPONSE_TIMEOUT`` (120 s reading the body and answering, 503). Sanic counts both from
  the last data that arrived or left.

The staff console and the web server (Starlette under uvicorn, which has neither limit) use
:class:`RequestLimitsMiddleware`: a body size (413), a deadline for the whole body (408) and one
for the answer to start (503).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic import settings

if TYPE_CHECKING:  # the staff console and the web server use this module without Sanic
    from sanic import Blueprint, Sanic

logger = logging.getLogger(__name__)


def limit_request_size(blueprint: Blueprint, max_bytes: int | None = None) -> None:
    """Sets ``REQUEST_MAX_SIZE`` of the app ``blueprint`` joins, when that server starts.

    Args:
        blueprint: a channel's blueprint (several may call this; they set the same value).
        max_bytes: the limit (default ``RASA_MAX_REQUEST_BYTES``, read when the server starts).
    """

    @blueprint.listener("before_server_start")
    async def set_request_max_size(app: Sanic, _loop: Any) -> None:
        limit = max_bytes if max_bytes is not None else settings.rasa_max_request_bytes()
        if limit != app.config.REQUEST_MAX_SIZE:
            app.config.REQUEST_MAX_SIZE = limit
            logger.info("requests larger than %d bytes are refused (413)", limit)


def limit_request_time(blueprint: Blueprint) -> None:
    """Sets ``REQUEST_TIMEOUT`` and ``RESPONSE_TIMEOUT`` of the app ``blueprint`` joins, when that
    server starts (``RASA_REQUEST_TIMEOUT``, ``RASA_RESPONSE_TIMEOUT``; these replace Rasa's
    ``--response-timeout``)."""

    @blueprint.listener("before_server_start")
    async def set_timeouts(app: Sanic, _loop: Any) -> None:
        request, response = settings.rasa_request_timeout(), settings.rasa_response_timeout()
        if (request, response) != (app.config.REQUEST_TIMEOUT, app.config.RESPONSE_TIMEOUT):
            app.config.REQUEST_TIMEOUT, app.config.RESPONSE_TIMEOUT = request, response
            logger.info("requests time out after %d s without headers (408), %d s without an answer (503)",
                        request, response)


class RequestLimitsMiddleware:
    """Bounds a request to a Starlette server: body size, time to send the body, time to answer.

    Over ``max_body_bytes`` (declared, or counted while it streams in): 413. The whole body not
    received ``request_timeout`` seconds after the request reached the app: 408. No answer
    started ``response_timeout`` seconds after it: the work on it is cancelled and it gets 503 (a
    handler running in a thread is waited for first). Errors raised while the body is read reach
    the app's own error pages; those the middleware sends itself are JSON ``{"error": ...}``.

    Args:
        app: the application.
        max_body_bytes: the largest body (None: the app limits bodies itself).
        request_timeout: seconds to receive the whole body.
        response_timeout: seconds to start the answer.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int | None, request_timeout: float,
                 response_timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.response_timeout = response_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if self.max_body_bytes is not None and declared is not None and declared.isdigit() \
                and int(declared) > self.max_body_bytes:
            await _error(413, "The request body is too large.")(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        body_deadline = loop.time() + self.request_timeout
        received, body_complete, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # waiting for the client to disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(body_deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                raise HTTPException(408, "The request took too long to arrive.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if self.max_body_bytes is not None and received > self.max_body_bytes:
                    raise HTTPException(413, "The request body is too large.")
                body_complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        task, timed_out = asyncio.current_task(), False

        def give_up() -> None:
            nonlocal timed_out
            if not started and task is not None:
                timed_out = True
                task.cancel()

        timer = loop.call_later(self.response_timeout, give_up)
        try:
            await self.app(scope, limited_receive, tracking_send)
        except asyncio.CancelledError:
            if not timed_out:
                raise
            logger.error("%s %s: no answer within %g s", scope.get("method"), scope.get("path"), self.response_timeout)
            await _error(503, "The server took too long to answer. Try again.")(scope, receive, send)
        except HTTPException as exc:  # raised by limited_receive outside the app's error handling
            if started:
                raise
            await _error(exc.status_code, exc.detail)(scope, receive, send)
        finally:
            timer.cancel()


def _error(status: int, message: str) -> JSONResponse:
    # The connection closes after it: a client still sending the body must not be read further.
    return JSONResponse({"error": message}, status_code=status, headers={"connection": "close"})

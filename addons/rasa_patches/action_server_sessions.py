"""Replaces ``EndpointConfig.session``: one kept HTTP session per endpoint and event loop,
whose JSON is encoded by ujson.

Why: ``EndpointConfig.request`` (every custom action call) opened a new HTTP session and TCP
connection to the action server and closed both afterwards. Each of those steps waits for a turn
of the busy event loop, so under load an action call took ~150 ms for ~5 ms of work. Here each
endpoint keeps one session per event loop, with keep-alive connections dropped after
:data:`KEEPALIVE_S` idle (before the action server's own 5 s keep-alive ends, so a reused
connection is never one the server is closing). Same headers, auth, timeout, errors and results.

The requests carry the conversation's whole tracker state (and the domain for the form
validators) as JSON, which aiohttp encoded with the standard library's pure-Python encoder: ~6%
of the server's time. The kept sessions encode with ujson (a Rasa dependency) instead
(:func:`encode_json`): the same JSON values, without spaces; anything ujson refuses (NaN, integers
beyond 64 bits) is encoded by ``json.dumps`` as before.

Every request through a kept session ends after ``ACTION_TIMEOUT_SECONDS`` (default 5 s,
:func:`clinic.settings.action_timeout_seconds`) instead of the 300 s Rasa asks for: a hung action
server (stopped, deadlocked, a slow backend) then fails the action in seconds, and
:mod:`.action_failures` gives the patient the safe reply, instead of holding the conversation (and
an SMS turn) for five minutes. The action server is the only endpoint this project's Rasa calls
through ``EndpointConfig.request``.

Outside a coroutine, Rasa's own session (closed after use) is returned.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import ujson
from rasa.utils.endpoints import EndpointConfig

from addons.rasa_patches.patch import Patch, Replacement
from clinic import settings

KEEPALIVE_S = 2.0
SESSIONS = "_clinic_sessions"  # attribute of an EndpointConfig: {id(event loop): session}
_timeout = aiohttp.ClientTimeout(total=5.0)  # set when installed (ACTION_TIMEOUT_SECONDS)


class _TimedSession:
    """The kept session, with every request bounded by the action timeout.

    Rasa passes its own ``timeout`` (300 s) with each request, which would override the
    session's; it is replaced here.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = _timeout
        return self._session.request(method, url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class _KeptSession:
    """``async with`` gives the endpoint's long-lived session and leaves it open."""

    def __init__(self, session: _TimedSession) -> None:
        self._session = session

    async def __aenter__(self) -> _TimedSession:
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        return None


def _session(self: EndpointConfig) -> Any:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not in a coroutine: Rasa's own (closed after use)
        return SESSION.original(self)
    # keyed by the loop's id: the session refers to its loop, so while it is kept here that
    # loop stays alive and its id cannot be reused by another loop
    sessions = self.__dict__.setdefault(SESSIONS, {})
    kept = sessions.get(id(loop))
    if kept is None or kept.closed:
        for other in list(sessions):
            if sessions[other].closed:
                del sessions[other]
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
        kept = sessions[id(loop)] = _TimedSession(aiohttp.ClientSession(
            headers=self.headers, auth=auth, timeout=_timeout,
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S), json_serialize=encode_json,
        ))
    return _KeptSession(kept)


def encode_json(value: Any) -> str:
    """JSON text of ``value``: ujson's, or the standard library's where ujson refuses it."""
    try:
        return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False, reject_bytes=True)
    except (TypeError, OverflowError, ValueError):
        return json.dumps(value)


def _read_timeout() -> None:
    """Reads ``ACTION_TIMEOUT_SECONDS`` (a bad value stops the server from starting)."""
    global _timeout
    _timeout = aiohttp.ClientTimeout(total=settings.action_timeout_seconds())


SESSION = Replacement(EndpointConfig, "session", _session)
PATCH = Patch("kept action-server sessions", [SESSION], prepare=_read_timeout)

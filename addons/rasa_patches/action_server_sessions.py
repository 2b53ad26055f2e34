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

KEEPALIVE_S = 2.0
SESSIONS = "_clinic_sessions"  # attribute of an EndpointConfig: {id(event loop): session}


class _KeptSession:
    """``async with`` gives the endpoint's long-lived session and leaves it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
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
        from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

        kept = sessions[id(loop)] = aiohttp.ClientSession(
            headers=self.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S), json_serialize=encode_json,
        )
    return _KeptSession(kept)


def encode_json(value: Any) -> str:
    """JSON text of ``value``: ujson's, or the standard library's where ujson refuses it."""
    try:
        return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False, reject_bytes=True)
    except (TypeError, OverflowError, ValueError):
        return json.dumps(value)


SESSION = Replacement(EndpointConfig, "session", _session)
PATCH = Patch("kept action-server sessions", [SESSION])

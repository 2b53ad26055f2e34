"""Wraps ``MessageProcessor.handle_message`` and ``EndpointConfig.request``: the Rasa server
finishes the messages it started before it starts new ones (fair turns).

Why: one Rasa process serves every conversation on one event loop. Without a limit, every
message that arrives starts at once, and a turn that waits for the action server (a booking
question, an escalation) goes to the back of the loop's queue when the reply comes, behind every
newer message: under load the turns that started first are answered last (p95 four times the
mean; README "Performance").

Here at most ``RASA_CONCURRENT_TURNS`` messages (default 1) are *working* inside Rasa's message
processor at once. A turn that waits on the network (Rasa's HTTP requests to the action server,
``EndpointConfig.request``) gives its place up meanwhile, so the CPU stays busy, and gets it
back *before* any message that has not started yet. Waiting messages start in arrival order.
Nothing else changes: each conversation still holds its own lock (lock store) from before it
waits here until its turn is saved, so its messages keep their order, and API calls (staff
replies, hand-back, tracker reads) never wait here.

At the first message it also moves everything loaded at start-up (model, domain, libraries) out
of reach of Python's cyclic garbage collector (``gc.freeze``): a full collection walked all of it,
holding every conversation for about 0.1-0.2 s several times a minute under load.

Server only (:class:`~addons.rasa_patches.patch.Patch` ``server_only``): a bare ``ClinicNLG()`` in
a unit test does not install it. The limit is read from the environment when it is installed.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections import deque
from dataclasses import dataclass
from typing import Any

from rasa.core.processor import MessageProcessor
from rasa.utils.endpoints import EndpointConfig

from addons.rasa_patches.patch import Patch, Replacement
from clinic import settings

DEFAULT_LIMIT = 1
_limit = DEFAULT_LIMIT  # set when installed
_frozen = False  # start-up objects frozen (once per installation)


def limit_from_env() -> int:
    """``RASA_CONCURRENT_TURNS`` (clinic.settings), a whole number from 1 (default 1)."""
    return settings.rasa_concurrent_turns()


class TurnGate:
    """At most ``limit`` holders at once. A place freed goes first to a holder coming back from
    the network (``resume=True``), then to the longest-waiting newcomer.

    A newcomer is always let in by a callback of a later event-loop step, never straight away:
    a message's turn runs without pausing once it starts, so letting newcomers straight in
    would start every message that arrived together, one after the other, before the loop
    looked at the network again (where the replies of the turns waiting on the action server
    sit). This way the loop looks at the network between two newcomers' turns.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        self.limit = limit
        self.active = 0
        self._resuming: deque[asyncio.Future[None]] = deque()
        self._new: deque[asyncio.Future[None]] = deque()
        self._dispatch_pending = False

    @property
    def waiting(self) -> int:
        return sum(1 for w in (*self._resuming, *self._new) if not w.done())

    async def acquire(self, resume: bool = False) -> None:
        if resume and self.active < self.limit and not self._resuming:
            self.active += 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        queue = self._resuming if resume else self._new
        queue.append(waiter)
        self._schedule_dispatch(loop)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # let in, then cancelled: give the place back
            elif waiter in queue:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        self.active -= 1
        if self._resuming or self._new:
            self._schedule_dispatch(asyncio.get_running_loop())

    def _schedule_dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._dispatch_pending:
            self._dispatch_pending = True
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_pending = False
        for queue in (self._resuming, self._new):
            while queue and self.active < self.limit:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    self.active += 1


@dataclass
class _Hold:
    gate: TurnGate
    holding: bool = False


_hold: contextvars.ContextVar[_Hold | None] = contextvars.ContextVar("clinic_turn_hold", default=None)
# One gate per event loop (tests run several loops), keyed by the loop's id. A gate holds no
# reference to its loop once nothing waits in it, so a new loop may get the id, and the gate, of
# one that ended: harmless when that loop ended with no turn inside or waiting (a Rasa server
# runs one loop for its whole life).
_gates: dict[int, TurnGate] = {}


def gate() -> TurnGate:
    """This event loop's gate."""
    loop_id = id(asyncio.get_running_loop())
    found = _gates.get(loop_id)
    if found is None:
        if len(_gates) > 16:
            _gates.clear()
        found = _gates[loop_id] = TurnGate(_limit)
    return found


def _freeze_start_up_objects() -> None:
    """Once, at the first message: the model, the domain and the libraries loaded at start-up
    leave Python's cyclic garbage collector, which otherwise walks all of them at every full
    collection (tens of milliseconds with everything on hold, several times a minute under load)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


async def _handle_message(self: MessageProcessor, message: Any) -> Any:
    _freeze_start_up_objects()
    hold = _Hold(gate())
    await hold.gate.acquire()
    hold.holding = True
    token = _hold.set(hold)
    try:
        return await HANDLE_MESSAGE.original(self, message)
    finally:
        _hold.reset(token)
        if hold.holding:
            hold.gate.release()


async def _request(self: EndpointConfig, *args: Any, **kwargs: Any) -> Any:
    hold = _hold.get()
    if hold is None or not hold.holding:
        return await REQUEST.original(self, *args, **kwargs)
    hold.gate.release()  # waiting on the network: someone else can work meanwhile
    hold.holding = False
    try:
        result = await REQUEST.original(self, *args, **kwargs)
    except asyncio.CancelledError:
        raise
    except BaseException:
        await hold.gate.acquire(resume=True)
        hold.holding = True
        raise
    await hold.gate.acquire(resume=True)
    hold.holding = True
    return result


def _read_limit() -> None:
    global _limit
    _limit = limit_from_env()


def _forget() -> None:
    global _limit, _frozen
    _limit, _frozen = DEFAULT_LIMIT, False
    _gates.clear()


HANDLE_MESSAGE = Replacement(MessageProcessor, "handle_message", _handle_message)
REQUEST = Replacement(EndpointConfig, "request", _request)
PATCH = Patch("fair turns", [HANDLE_MESSAGE, REQUEST], prepare=_read_limit, reset=_forget, server_only=True)

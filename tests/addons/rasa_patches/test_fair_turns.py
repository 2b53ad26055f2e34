"""addons.rasa_patches.fair_turns: a few turns at a time, started turns first, newcomers in arrival order."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest
from rasa.core.processor import MessageProcessor
from rasa.utils.endpoints import EndpointConfig

from addons.rasa_patches import fair_turns
from addons.rasa_patches.fair_turns import TurnGate


def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASA_CONCURRENT_TURNS", raising=False)
    assert fair_turns.limit_from_env() == fair_turns.DEFAULT_LIMIT == 1
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", " 3 ")
    assert fair_turns.limit_from_env() == 3
    with pytest.raises(ValueError):
        TurnGate(0)


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", bad)

    with pytest.raises(ValueError, match="RASA_CONCURRENT_TURNS"):
        fair_turns.limit_from_env()


def test_newcomers_get_in_one_at_a_time_in_arrival_order() -> None:
    async def scenario() -> tuple[list[str], int]:
        gate, order, most = TurnGate(1), [], 0

        async def turn(name: str) -> None:
            nonlocal most
            await gate.acquire()
            most = max(most, gate.active)
            order.append(name)
            await asyncio.sleep(0.001)
            gate.release()

        await asyncio.gather(*(turn(f"m{i}") for i in range(8)))
        return order, most

    order, most = asyncio.run(scenario())
    assert order == [f"m{i}" for i in range(8)]
    assert most == 1


def test_a_newcomer_waits_for_a_later_loop_step_even_when_the_gate_is_free() -> None:
    async def scenario() -> list[str]:
        gate, steps = TurnGate(1), []

        async def newcomer() -> None:
            await gate.acquire()
            steps.append("newcomer in")
            gate.release()

        task = asyncio.ensure_future(newcomer())
        await asyncio.sleep(0)
        steps.append("loop step")  # the newcomer is not in yet: it is let in by a callback
        await task
        return steps

    assert asyncio.run(scenario()) == ["loop step", "newcomer in"]


def test_a_turn_back_from_the_network_goes_before_newcomers() -> None:
    async def scenario() -> list[str]:
        gate, order = TurnGate(1), []
        await gate.acquire()  # "booking" works, then waits on the action server
        gate.release()
        newcomers = [asyncio.ensure_future(_enter(gate, f"new{i}", order)) for i in range(3)]
        await asyncio.sleep(0)  # all three are queued; the first is let in
        await gate.acquire(resume=True)  # the booking turn's reply arrived
        order.append("booking resumed")
        gate.release()
        await asyncio.gather(*newcomers)
        return order

    order = asyncio.run(scenario())
    assert order.index("booking resumed") <= 1  # at most the newcomer already let in goes first
    assert [o for o in order if o.startswith("new")] == ["new0", "new1", "new2"]


async def _enter(gate: TurnGate, name: str, order: list[str]) -> None:
    await gate.acquire()
    order.append(name)
    await asyncio.sleep(0.001)
    gate.release()


def test_a_cancelled_waiter_never_holds_a_place() -> None:
    async def scenario() -> tuple[int, int]:
        gate = TurnGate(1)
        await gate.acquire()
        waiting = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.release()
        await asyncio.wait_for(gate.acquire(), 1)  # the place is free again
        active = gate.active
        gate.release()
        return active, gate.active

    assert asyncio.run(scenario()) == (1, 0)


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fair turns installed, one turn at a time. The first message freezes the objects alive at
    that moment out of the garbage collector's reach (a server's start-up objects): here that
    would be everything the test session holds, so they are given back afterwards."""
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "1")
    fair_turns.PATCH.uninstall()
    frozen_before = gc.get_freeze_count()
    fair_turns.PATCH.install()
    yield
    fair_turns.PATCH.uninstall()
    if not frozen_before:  # (gc.unfreeze cannot tell apart what someone else froze)
        gc.unfreeze()


def test_message_turns_are_gated_and_network_waits_give_the_place_up(gated: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the patched Rasa methods: one turn works at a time; a turn waiting on an HTTP
    request lets another work and gets back in before later newcomers."""
    log: list[str] = []
    replies: list[asyncio.Event] = []

    async def fake_request(self: EndpointConfig, **kwargs: Any) -> dict:
        log.append(f"{kwargs['json']['who']} waits")
        replies.append(asyncio.Event())
        await replies[-1].wait()
        return {"ok": True}

    async def fake_handle(self: Any, message: str) -> str:
        log.append(f"{message} works ({fair_turns.gate().active} active)")
        if message == "booking":
            await EndpointConfig("http://127.0.0.1:1").request(json={"who": message})
            log.append(f"{message} back ({fair_turns.gate().active} active)")
        else:
            if message == "faq0":
                replies[0].set()  # the action server's reply arrives while faq0 works
            time.sleep(0.005)  # a FAQ turn's CPU work: the loop does nothing else meanwhile
        return message

    monkeypatch.setattr(fair_turns.HANDLE_MESSAGE, "original", fake_handle)
    monkeypatch.setattr(fair_turns.REQUEST, "original", fake_request)

    async def scenario() -> list[str]:
        processor = object.__new__(MessageProcessor)
        first = asyncio.ensure_future(MessageProcessor.handle_message(processor, "booking"))
        while not log:
            await asyncio.sleep(0)
        rest = [asyncio.ensure_future(MessageProcessor.handle_message(processor, f"faq{i}")) for i in range(3)]
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == ["booking", "faq0", "faq1", "faq2"]
    assert gc.get_freeze_count() > 0  # start-up objects left the garbage collector's reach
    # the booking goes on before faq1 and faq2, which arrived before its reply
    assert log == ["booking works (1 active)", "booking waits", "faq0 works (1 active)",
                   "booking back (1 active)", "faq1 works (1 active)", "faq2 works (1 active)"]


def test_install_is_idempotent_and_uninstall_restores_rasa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "2")
    fair_turns.PATCH.uninstall()
    rasas = (MessageProcessor.handle_message, EndpointConfig.request)
    fair_turns.PATCH.install()
    once = (MessageProcessor.handle_message, EndpointConfig.request)
    fair_turns.PATCH.install()
    assert (MessageProcessor.handle_message, EndpointConfig.request) == once
    assert once[0] is not rasas[0] and once[1] is not rasas[1]

    async def limit() -> int:
        return fair_turns.gate().limit

    assert asyncio.run(limit()) == 2  # read from the environment when installed
    fair_turns.PATCH.uninstall()
    assert (MessageProcessor.handle_message, EndpointConfig.request) == rasas


def test_a_bad_limit_refuses_the_install_and_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "many")
    fair_turns.PATCH.uninstall()
    rasas = (MessageProcessor.handle_message, EndpointConfig.request)
    with pytest.raises(ValueError, match="RASA_CONCURRENT_TURNS"):
        fair_turns.PATCH.install()
    assert (MessageProcessor.handle_message, EndpointConfig.request) == rasas
    assert not fair_turns.PATCH.installed

"""Scale-out: two Rasa instances and one action server sharing PostgreSQL (Rasa's tracker store and
the clinic database, in a fresh schema) and Redis (conversation locks and socket.io messages, under
a fresh key prefix).

* 100 concurrent conversations on the REST channel whose messages alternate between the two
  instances: every tracker holds exactly the patient's messages, in order, and the right
  dialogue state (a booking form running, or the conversation held for staff with one escalation).
* Both instances queue on the same conversation lock in Redis.
* A staff reply sent through one instance's HTTP API reaches a browser (socket.io) connected to the
  other.
* The reverse proxy of ``make run-prod`` (clinic/proxy.py) keeps a browser's socket.io session on
  one instance (polling, then the WebSocket upgrade) while spreading requests over both.

Runs when PostgreSQL and Redis are reachable (``CLINIC_TEST_POSTGRES_URL``, ``CLINIC_TEST_REDIS_URL``,
default the local servers); skipped otherwise, except under ``CI=true``, where it fails instead.
The timings go to ``results/scale-out.json``.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clinic.launcher import Stack
from clinic.rasa_api import send_staff_reply
from tests.integration.conftest import free_port
from tests.integration.patient import SocketPatient

pytestmark = pytest.mark.postgres

CONVERSATIONS = 100
GREETINGS = ["hi", "hello", "hey"]
FAQS = [
    "what is ketamine",
    "what side effects does ketamine have",
    "how quickly do people feel better",
    "what's your address",
    "can i split the payments up",
]
BOOKING = "I'd like to book a consultation"
MEDICAL = "i'm on lithium and lamictal, is ketamine safe for me?"
RESULTS = Path(__file__).resolve().parents[2] / "results" / "scale-out.json"


@pytest.fixture(scope="module")
def scaled(model: str, postgres_schema_url: str, redis_server_url: str, redis_key_prefix: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two Rasa instances (``rasa_ports``) and an action server on one PostgreSQL schema and Redis."""
    from clinic.db import migrate

    var = tmp_path_factory.mktemp("scale")
    env = {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": postgres_schema_url,
        "TRACKER_STORE_URL": postgres_schema_url,
        "REDIS_URL": redis_server_url,
        "REDIS_KEY_PREFIX": redis_key_prefix,
    }
    migrate(postgres_schema_url)
    stack = Stack(model, free_port(), free_port(), env=env, log_dir=var / "logs", extra_rasa_ports=[free_port()],
                  proxy_port=free_port())
    started = time.monotonic()
    stack.start(timeout=300)
    stack.start_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    yield stack
    stack.stop()


def _url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def say(client: httpx.Client, port: int, sender: str, text: str) -> list[dict[str, Any]]:
    response = client.post(_url(port, "/webhooks/rest/webhook"), json={"sender": sender, "message": text})
    response.raise_for_status()
    return response.json()


def tracker(port: int, sender: str) -> dict[str, Any]:
    response = httpx.get(_url(port, f"/conversations/{sender}/tracker"), timeout=30)
    response.raise_for_status()
    return response.json()


def user_texts(state: dict[str, Any]) -> list[str]:
    return [event.get("text") for event in state["events"] if event["event"] == "user"]


@dataclass
class Conversation:
    sender: str
    kind: str  # "booking" or "medical"
    messages: list[str]
    ports: list[int]  # the instance each message goes to
    replies: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    error: str | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=180) as client:
                for text, port in zip(self.messages, self.ports):
                    started = time.monotonic()
                    answer = say(client, port, self.sender, text)
                    self.seconds.append(time.monotonic() - started)
                    self.replies.append(" ".join(m.get("text") or "" for m in answer))
        except Exception as exc:  # noqa: BLE001 - reported with the others below
            self.error = f"{type(exc).__name__}: {exc}"


def test_concurrent_conversations_alternating_between_instances_lose_nothing(scaled: Stack) -> None:
    from tests.clinic.staff import stored_escalations

    a, b = scaled.rasa_ports
    run_id = uuid.uuid4().hex[:8]
    conversations = []
    for n in range(CONVERSATIONS):
        kind = "booking" if n % 2 == 0 else "medical"
        messages = [GREETINGS[n % 3], FAQS[n % 5], FAQS[(n + 2) % 5], BOOKING if kind == "booking" else MEDICAL]
        # Alternating instances, half the conversations starting on each.
        ports = [(a, b)[(n + k) % 2] for k in range(len(messages))]
        conversations.append(Conversation(f"scale-{run_id}-{n:03d}", kind, messages, ports))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONVERSATIONS) as pool:
        for conversation in conversations:
            pool.submit(conversation.run)
    elapsed = time.monotonic() - started

    errors = [f"{c.sender}: {c.error}" for c in conversations if c.error]
    latencies = sorted(s for c in conversations for s in c.seconds)
    summary = {
        "conversations": CONVERSATIONS,
        "messages": len(latencies),
        "errors": len(errors),
        "rasa_instances": 2,
        "stack_start_seconds": round(getattr(scaled, "start_seconds", 0.0), 1),
        "traffic_seconds": round(elapsed, 1),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        "latency_median_seconds": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_seconds": round(latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else None,
        "latency_max_seconds": round(latencies[-1], 2) if latencies else None,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nscale-out: {json.dumps(summary)}")
    assert not errors, f"{len(errors)} conversations failed (logs: {scaled.log_dir}): {errors[:5]}"

    # The assistant answered every message, and the last one as its kind requires.
    for c in conversations:
        assert all(c.replies), (c.sender, c.messages, c.replies)
        if c.kind == "booking":
            assert "full name" in c.replies[-1], (c.sender, c.replies[-1])
        else:
            assert "clinical team" in c.replies[-1], (c.sender, c.replies[-1])

    # Every tracker (read from the instance that did not take the last message) holds exactly the
    # messages sent, in order, and the right state.
    problems = []
    for c in conversations:
        other = b if c.ports[-1] == a else a
        state = tracker(other, c.sender)
        if user_texts(state) != c.messages:
            problems.append(f"{c.sender}: user messages {user_texts(state)} != {c.messages}")
        slots, loop = state["slots"], (state.get("active_loop") or {}).get("name")
        if c.kind == "booking" and (loop != "booking_form" or slots.get("handoff")):
            problems.append(f"{c.sender}: booking expected a running booking_form, got loop={loop} "
                            f"handoff={slots.get('handoff')}")
        if c.kind == "medical" and (slots.get("handoff") is not True or loop):
            problems.append(f"{c.sender}: medical question expected handoff=true, got loop={loop} "
                            f"handoff={slots.get('handoff')}")
    assert not problems, f"{len(problems)} wrong trackers: {problems[:5]}"

    # Exactly one escalation per medical conversation, none for the others.
    stored = stored_escalations(status=None, database_url=scaled.env["CLINIC_DATABASE_URL"])
    escalated = sorted(e.conversation_id for e in stored)
    assert escalated == sorted(c.sender for c in conversations if c.kind == "medical")


def test_both_instances_queue_on_one_conversation_lock_in_redis(scaled: Stack) -> None:
    """While a ticket for the conversation is held in Redis, neither instance processes its
    messages; once released they run one at a time, in the order they arrived."""
    from addons.lock_store import AtomicRedisLockStore, redis_connection_kwargs

    a, b = scaled.rasa_ports
    store = AtomicRedisLockStore(**redis_connection_kwargs(scaled.env["REDIS_URL"]),
                                 key_prefix=scaled.env["REDIS_KEY_PREFIX"])
    sender = f"lock-{uuid.uuid4().hex[:12]}"
    ticket = store.issue_ticket(sender)
    with ThreadPoolExecutor(max_workers=2) as pool, httpx.Client(timeout=120) as client:
        first = pool.submit(say, client, a, sender, "hi")
        time.sleep(1.0)
        second = pool.submit(say, client, b, sender, FAQS[0])
        time.sleep(3.0)
        waiting = not first.done() and not second.done()
        store.cleanup(sender, ticket)
        assert waiting, "an instance processed a message while the conversation was locked in Redis"
        assert first.result(timeout=120) and second.result(timeout=120)
    assert user_texts(tracker(b, sender)) == ["hi", FAQS[0]]
    assert store.get_lock(sender) is None  # released and removed


def test_staff_reply_through_one_instance_reaches_a_browser_on_the_other(scaled: Stack) -> None:
    a, b = scaled.rasa_ports
    for connected, via in ((b, a), (a, b)):
        patient = SocketPatient(connected)
        try:
            patient.say(MEDICAL)
            assert "clinical team" in " ".join(patient.replies())
            text = f"Hi, this is Dana from the clinic (via {via})."
            delivery = send_staff_reply(patient.session_id, text, staff_name="Dana", base_url=_url(via, ""))
            assert delivery.ok, delivery.error
            assert patient.replies() == [text]
        finally:
            patient.close()


def test_redis_locks_exclude_each_other_across_connections(redis_server_url: str, redis_key_prefix: str) -> None:
    """Six stores (as six instances would: one Redis connection each) take the same conversation's
    lock 15 times each: never two holders at once, no lost ticket, no key left. (Rasa's own
    ``RedisLockStore`` fails this: its read-change-write of a ticket is not atomic.)"""
    import asyncio
    import threading

    from addons.lock_store import AtomicRedisLockStore, redis_connection_kwargs

    sender = f"race-{uuid.uuid4().hex[:12]}"
    holders: set[int] = set()
    overlaps, finished, failures = [], [], []
    guard = threading.Lock()

    def instance(number: int) -> None:
        store = AtomicRedisLockStore(**redis_connection_kwargs(redis_server_url), key_prefix=redis_key_prefix)

        async def turns() -> None:
            for turn in range(15):
                async with store.lock(sender, wait_time_in_seconds=0.002):
                    with guard:
                        if holders:
                            overlaps.append((number, turn))
                        holders.add(number)
                    await asyncio.sleep(0.003)
                    with guard:
                        holders.discard(number)
                finished.append(number)

        try:
            asyncio.run(turns())
        except Exception as exc:  # noqa: BLE001 - counted below
            failures.append(repr(exc))

    threads = [threading.Thread(target=instance, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures and not overlaps and len(finished) == 6 * 15
    store = AtomicRedisLockStore(**redis_connection_kwargs(redis_server_url), key_prefix=redis_key_prefix)
    assert store.get_lock(sender) is None



async def browser_session(port: int, staff_reply: str) -> tuple[str, list[str], list[str]]:
    """A web patient connecting as the widget does (polling first, then upgraded to a WebSocket:
    python-socketio's asyncio client): asks a medical question, then staff reply through ``port``.
    Returns the transport used and the texts received after the question and after the reply."""
    import asyncio

    import socketio

    client = socketio.AsyncClient(reconnection=False)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    confirmed: asyncio.Queue[str] = asyncio.Queue()
    client.on("bot_uttered", received.put)
    client.on("session_confirm", confirmed.put)

    async def texts(quiet_for: float = 1.5, wait: float = 15.0) -> list[str]:
        collected = [(await asyncio.wait_for(received.get(), wait)).get("text") or ""]
        while True:
            try:
                collected.append((await asyncio.wait_for(received.get(), quiet_for)).get("text") or "")
            except asyncio.TimeoutError:
                return collected

    session_id = f"web-{uuid.uuid4().hex[:12]}"
    await client.connect(f"http://127.0.0.1:{port}", wait_timeout=10)
    try:
        await client.emit("session_request", {"session_id": session_id})
        await asyncio.wait_for(confirmed.get(), 10)
        await client.emit("user_uttered", {"message": MEDICAL, "session_id": session_id})
        answered = await texts()
        transport = client.transport()
        delivery = await asyncio.to_thread(send_staff_reply, session_id, staff_reply, staff_name="Sam",
                                           base_url=_url(port, ""))
        assert delivery.ok, delivery.error
        return transport, answered, await texts()
    finally:
        await client.disconnect()


def test_the_proxy_keeps_a_browser_session_on_one_instance(scaled: Stack) -> None:
    import asyncio

    proxy = scaled.proxy_port
    assert proxy is not None
    transport, answered, replied = asyncio.run(browser_session(proxy, "Hi, this is Sam from the clinic."))
    assert transport == "websocket"  # upgraded through the proxy
    assert "clinical team" in " ".join(answered)
    assert replied == ["Hi, this is Sam from the clinic."]

    polling = SocketPatient(proxy)  # polling only: every request must reach the session's instance
    try:
        for text in (FAQS[0], FAQS[1], FAQS[2]):
            polling.say(text)
            assert polling.replies(), text
    finally:
        polling.close()

    # REST through the proxy: round-robin, nothing lost.
    sender = f"proxy-{uuid.uuid4().hex[:12]}"
    with httpx.Client(timeout=120) as client:
        for text in ("hi", *FAQS):
            assert say(client, proxy, sender, text)
    assert user_texts(tracker(proxy, sender)) == ["hi", *FAQS]

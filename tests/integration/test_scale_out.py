"""Scale-out through nginx: two Rasa instances and one action server behind the nginx of ``make
run-prod`` (:mod:`clinic.nginx`), sharing PostgreSQL (Rasa's tracker store and the clinic database,
in a fresh schema) and Redis (conversation locks and socket.io messages, under a fresh key prefix).

* 100 concurrent conversations on the REST channel through nginx, which spreads them over both
  instances; a third of the way in, one instance is killed (SIGKILL). nginx sends the messages it
  was working on, and every later one, to the other: every conversation gets every answer, every
  tracker holds exactly the patient's messages, in order, and the right dialogue state (a booking
  form running, or the conversation held for staff with one escalation).
* Both instances queue on the same conversation lock in Redis.
* Through nginx, a browser's socket.io session stays on one instance, polling and then upgraded
  to a WebSocket, or polling only; a staff reply sent through either instance reaches it.

Runs when PostgreSQL and Redis are reachable (``CLINIC_TEST_POSTGRES_URL``, ``CLINIC_TEST_REDIS_URL``,
default the local servers) and nginx is installed (``make nginx``); skipped otherwise, except under
``CI=true``, where it fails instead. The figures go to ``results/scale-out.json``.
"""

from __future__ import annotations

import json
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clinic import nginx
from clinic.launcher import Front, Stack
from clinic.rasa_api import send_staff_reply
from tests.deploy.conftest import require_tool
from tests.integration.conftest import free_port
from tests.integration.patient import SocketPatient

pytestmark = pytest.mark.postgres

CONVERSATIONS = 100
KILL_AFTER = 0.33  # of all messages answered
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
LOG_LINE = re.compile(r'"(?P<method>\S+) (?P<path>\S+)" (?P<status>\d+) .* upstream=(?P<upstream>.*?) upstream_status=')


@pytest.fixture(scope="module")
def scaled(model: str, postgres_schema_url: str, redis_server_url: str, redis_key_prefix: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx (``front.rasa_port``) in front of two Rasa instances (``rasa_ports``) and an action
    server, on one PostgreSQL schema and Redis."""
    from clinic.db import migrate

    require_tool(nginx.find_binary(), "nginx", "`make nginx` or `sudo apt-get install nginx`")
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
                  front=Front(free_port()))
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


def access_log(stack: Stack, offset: int = 0) -> list[dict[str, str]]:
    """nginx's access log lines (from byte ``offset``): method, path, status, upstream (the instances
    tried, in order: ``127.0.0.1:5006, 127.0.0.1:5007`` when the first failed)."""
    with open(stack.nginx_dir / "access.log", "rb") as log:
        log.seek(offset)
        lines = log.read().decode()
    return [found.groupdict() for found in map(LOG_LINE.search, lines.splitlines()) if found]


def percentile(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[int(fraction * (len(ordered) - 1))], 2) if ordered else None


@dataclass
class Conversation:
    sender: str
    kind: str  # "booking" or "medical"
    messages: list[str]
    replies: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    error: str | None = None

    def run(self, port: int, answered: threading.Semaphore) -> None:
        try:
            with httpx.Client(timeout=180) as client:
                for text in self.messages:
                    started = time.monotonic()
                    answer = say(client, port, self.sender, text)
                    self.seconds.append(time.monotonic() - started)
                    self.answered_at.append(time.monotonic())
                    self.replies.append(" ".join(m.get("text") or "" for m in answer))
                    answered.release()
        except Exception as exc:  # noqa: BLE001 - reported with the others below
            self.error = f"{type(exc).__name__}: {exc}"


def _kill_when(answered: threading.Semaphore, count: int, stack: Stack, name: str) -> dict[str, float]:
    """Waits for ``count`` answers, then kills the Rasa instance ``name`` (SIGKILL: no goodbye);
    returns when, and where nginx's access log stood just after."""
    for _ in range(count):
        answered.acquire()
    child = next(c for c in stack.children if c.name == name)
    child.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    child.process.wait(timeout=10)
    time.sleep(0.5)  # answers it completed before dying are logged by now
    return {"at": killed_at, "log_offset": (stack.nginx_dir / "access.log").stat().st_size}


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


# An instance holding a conversation's lock: it says so, then works on the message forever.
DEAD_HOLDER = """
import asyncio, sys
from addons import lock_store
lock_store.LEASE_SECONDS = 1.0
url, prefix, sender = sys.argv[1:]
store = lock_store.AtomicRedisLockStore(**lock_store.redis_connection_kwargs(url), key_prefix=prefix)
async def hold():
    async with store.lock(sender):
        print("holding", flush=True)
        await asyncio.sleep(3600)
asyncio.run(hold())
"""


def test_a_dead_instances_turn_passes_within_the_lease_and_a_live_one_keeps_it(
    redis_server_url: str, redis_key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ticket taken by an instance that then died (never renewed, never released) stops
    blocking the conversation once its lease is over; a live holder working longer than the
    lease keeps its turn until it releases it."""
    import asyncio

    from addons import lock_store
    from addons.lock_store import AtomicRedisLockStore, redis_connection_kwargs

    monkeypatch.setattr(lock_store, "LEASE_SECONDS", 1.0)
    kwargs = redis_connection_kwargs(redis_server_url)
    live, waiter = (AtomicRedisLockStore(**kwargs, key_prefix=redis_key_prefix) for _ in range(2))

    sender = f"dead-{uuid.uuid4().hex[:12]}"
    holder = subprocess.Popen(
        [sys.executable, "-c", DEAD_HOLDER, redis_server_url, redis_key_prefix, sender],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    finally:
        holder.kill()  # SIGKILL: its ticket is neither renewed nor released
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()

    async def after_a_dead_holder() -> float:
        started = time.monotonic()
        async with waiter.lock(sender, wait_time_in_seconds=0.05):
            return time.monotonic() - started

    waited = asyncio.run(after_a_dead_holder())
    assert waited < 3, waited

    async def behind_a_live_holder() -> list[str]:
        sender = f"live-{uuid.uuid4().hex[:12]}"
        order: list[str] = []

        async def hold() -> None:
            async with live.lock(sender, wait_time_in_seconds=0.05):
                order.append("live holder starts")
                await asyncio.sleep(3.5)  # over three leases
                order.append("live holder ends")

        async def wait() -> None:
            await asyncio.sleep(0.2)
            async with waiter.lock(sender, wait_time_in_seconds=0.05):
                order.append("waiter starts")

        await asyncio.gather(hold(), wait())
        assert waiter.get_lock(sender) is None
        return order

    assert asyncio.run(behind_a_live_holder()) == ["live holder starts", "live holder ends", "waiter starts"]



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


def socketio_instance(stack: Stack, log_offset: int) -> int:
    """The instance nginx sent the socket.io requests logged after ``log_offset`` to (one only)."""
    upstreams = {line["upstream"] for line in access_log(stack, log_offset) if line["path"] == "/socket.io/"}
    assert len(upstreams) == 1, f"one browser's socket.io requests reached {upstreams}"
    return int(upstreams.pop().rsplit(":", 1)[1])


def test_browsers_keep_their_socketio_session_through_nginx(scaled: Stack) -> None:
    import asyncio

    assert scaled.front is not None
    port = scaled.front.rasa_port
    offset = (scaled.nginx_dir / "access.log").stat().st_size
    transport, answered, replied = asyncio.run(browser_session(port, "Hi, this is Sam from the clinic."))
    assert transport == "websocket"  # upgraded through nginx
    assert "clinical team" in " ".join(answered)
    assert replied == ["Hi, this is Sam from the clinic."]
    socketio_instance(scaled, offset)

    offset = (scaled.nginx_dir / "access.log").stat().st_size
    polling = SocketPatient(port)  # polling only: every request must reach the session's instance
    try:
        for text in (FAQS[0], FAQS[1], FAQS[2]):
            polling.say(text)
            assert polling.replies(), text
    finally:
        polling.close()
    socketio_instance(scaled, offset)


def test_a_staff_reply_through_either_instance_reaches_a_browser_behind_nginx(scaled: Stack) -> None:
    assert scaled.front is not None
    offset = (scaled.nginx_dir / "access.log").stat().st_size
    patient = SocketPatient(scaled.front.rasa_port)
    try:
        patient.say(MEDICAL)
        assert "clinical team" in " ".join(patient.replies())
        holder = socketio_instance(scaled, offset)
        other = next(p for p in scaled.rasa_ports if p != holder)
        for via in (other, holder):  # across instances (Redis carries it), then the session's own
            text = f"Hi, this is Dana from the clinic (via {'the other instance' if via == other else 'its own'})."
            delivery = send_staff_reply(patient.session_id, text, staff_name="Dana", base_url=_url(via, ""))
            assert delivery.ok, delivery.error
            assert patient.replies() == [text]
    finally:
        patient.close()


def test_concurrent_conversations_through_nginx_lose_nothing_when_an_instance_dies(scaled: Stack) -> None:
    from tests.clinic.staff import stored_escalations

    assert scaled.front is not None
    port, (kept, killed) = scaled.front.rasa_port, scaled.rasa_ports
    run_id = uuid.uuid4().hex[:8]
    conversations = []
    for n in range(CONVERSATIONS):
        kind = "booking" if n % 2 == 0 else "medical"
        messages = [GREETINGS[n % 3], FAQS[n % 5], FAQS[(n + 2) % 5], BOOKING if kind == "booking" else MEDICAL]
        conversations.append(Conversation(f"scale-{run_id}-{n:03d}", kind, messages))
    total = sum(len(c.messages) for c in conversations)
    log_start = (scaled.nginx_dir / "access.log").stat().st_size

    answered = threading.Semaphore(0)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONVERSATIONS + 1) as pool:
        kill = pool.submit(_kill_when, answered, int(total * KILL_AFTER), scaled, "rasa-2")
        for conversation in conversations:
            pool.submit(conversation.run, port, answered)
    elapsed = time.monotonic() - started
    killing = kill.result(timeout=1)

    errors = [f"{c.sender}: {c.error}" for c in conversations if c.error]
    latencies = [s for c in conversations for s in c.seconds]
    after_kill = [s for c in conversations for s, at in zip(c.seconds, c.answered_at) if at > killing["at"]]
    messages = [line for line in access_log(scaled, log_start) if line["path"] == "/webhooks/rest/webhook"]
    answered_by = {p: sum(1 for line in messages if line["upstream"].endswith(f":{p}")) for p in (kept, killed)}
    moved = [line for line in messages if line["upstream"] == f"127.0.0.1:{killed}, 127.0.0.1:{kept}"]
    after = [line for line in access_log(scaled, killing["log_offset"]) if line["path"] == "/webhooks/rest/webhook"]
    summary = {
        "through": "nginx",
        "conversations": CONVERSATIONS,
        "messages": len(latencies),
        "errors": len(errors),
        "rasa_instances": 2,
        "answered_by_instance": {"kept": answered_by[kept], "killed": answered_by[killed]},
        "instance_killed_after_messages": int(total * KILL_AFTER),
        "messages_moved_by_nginx_from_the_killed_instance": len(moved),
        "stack_start_seconds": round(getattr(scaled, "start_seconds", 0.0), 1),
        "traffic_seconds": round(elapsed, 1),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        "latency_p50_seconds": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_seconds": percentile(latencies, 0.95),
        "latency_max_seconds": round(max(latencies), 2) if latencies else None,
        "after_kill_latency_p50_seconds": round(statistics.median(after_kill), 2) if after_kill else None,
        "after_kill_latency_p95_seconds": percentile(after_kill, 0.95),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nscale-out: {json.dumps(summary)}")
    assert not errors, f"{len(errors)} conversations failed (logs: {scaled.log_dir}): {errors[:5]}"

    # nginx spread the conversations over both instances, then sent everything to the one left.
    assert answered_by[kept] > 0 and answered_by[killed] > 0, answered_by
    assert [line for line in messages if line["status"] != "200"] == []
    assert [line for line in after if line["upstream"].endswith(f":{killed}")] == []

    # The assistant answered every message, and the last one as its kind requires.
    for c in conversations:
        assert all(c.replies), (c.sender, c.messages, c.replies)
        if c.kind == "booking":
            assert "full name" in c.replies[-1], (c.sender, c.replies[-1])
        else:
            assert "clinical team" in c.replies[-1], (c.sender, c.replies[-1])

    # Every tracker (read through nginx, so from the instance left) holds exactly the messages
    # sent, in order, and the right state.
    problems = []
    for c in conversations:
        state = tracker(port, c.sender)
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
    escalated = sorted(e.conversation_id for e in stored if e.conversation_id.startswith(f"scale-{run_id}-"))
    assert escalated == sorted(c.sender for c in conversations if c.kind == "medical")

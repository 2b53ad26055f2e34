"""Channels own their conversations (issue 16): the REST channel of the real assistant cannot write
into an SMS patient's conversation, a typed ``/EXTERNAL_handoff_resolved`` ends no hand-off, and
refused requests (a 60 MB body among them) write nothing.

The whole assistant runs as in the other integration tests, with the SMS line configured against
a local stand-in for Twilio's Messages API (as in test_log_hygiene.py).
"""

from __future__ import annotations

import random
import secrets
import select
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from clinic.launcher import Stack
from clinic.rasa_api import send_staff_reply
from tests.clinic.staff import stored_escalations
from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN, TwilioStub
from tests.integration.conftest import PUBLIC_SMS_URL, SMS_LINE, sms_env, started_stack, wait_for

TIMEOUT = 60
MEDICAL = "i'm on lithium and lamictal, is ketamine safe for me?"
HAND_BACK_ACTION = "action_handoff_resolved"
SIXTY_MB = 60 * 1000 * 1000


@pytest.fixture(scope="module")
def stack(model: str, twilio: TwilioStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = sms_env(tmp_path_factory.mktemp("channel-ids"), twilio)
    with started_stack(model, env, quiet=True) as running:
        yield running


# The module's tests share one assistant, so each test's patient gets a number of its own: a number
# drawn twice would continue an earlier test's conversation. 555-01XX is reserved for fiction.
_PHONES = iter(random.sample(range(100, 200), 100))


def _phone() -> str:
    return f"+1312555{next(_PHONES):04d}"


def _rest(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook", json=body, timeout=TIMEOUT)


def _text_the_line(stack: Stack, phone: str, body: str) -> httpx.Response:
    fields = {"From": phone, "To": SMS_LINE, "Body": body, "MessageSid": f"SM{secrets.token_hex(16)}",
              "AccountSid": TWILIO_SID, "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_SMS_URL, fields)
    return httpx.post(f"http://127.0.0.1:{stack.rasa_port}/webhooks/twilio/webhook", data=fields,
                      headers={"X-Twilio-Signature": signature}, timeout=TIMEOUT)


def _tracker(stack: Stack, conversation_id: str) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{stack.rasa_port}/conversations/{conversation_id}/tracker",
                         timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def _user_texts(tracker: dict[str, Any]) -> list[str]:
    return [e.get("text") or "" for e in tracker["events"] if e["event"] == "user"]


def _actions(tracker: dict[str, Any]) -> list[str]:
    return [e["name"] for e in tracker["events"] if e["event"] == "action"]


def _tracker_store_state(stack: Stack) -> tuple[int, int]:
    """The tracker store's size on disk (database and write-ahead log) and its number of events."""
    path = Path(stack.env["TRACKER_STORE_URL"].removeprefix("sqlite:///"))
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    with sqlite3.connect(path) as connection:
        [(events,)] = connection.execute("SELECT count(*) FROM events").fetchall()
    return size, events


def _stored_events(stack: Stack, conversation_id: str) -> int:
    path = stack.env["TRACKER_STORE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        [(events,)] = connection.execute("SELECT count(*) FROM events WHERE sender_id = ?",
                                         (conversation_id,)).fetchall()
    return int(events)


def _post_huge(port: int, size: int, chunked: bool) -> int:
    """POSTs a REST message whose ``metadata`` holds ``size`` bytes, streaming the body until the
    server answers (or refuses to read more); the HTTP status."""
    prefix = b'{"sender": "rest-huge-' + uuid.uuid4().hex[:8].encode() + b'", "message": "hi", "metadata": {"a": "'
    suffix = b'"}}'
    length = len(prefix) + size + len(suffix)
    head = ("POST /webhooks/rest/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {length}\r\n") + "\r\n")

    def framed(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data

    block = b"a" * 65536
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        connection.sendall(head.encode() + framed(prefix))
        sent = 0
        while sent < size and not select.select([connection], [], [], 0)[0]:
            part = block[: size - sent]
            try:
                connection.sendall(framed(part))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(part)
        if sent >= size:
            connection.sendall(framed(suffix) + (b"0\r\n\r\n" if chunked else b""))
        while b"\r\n" not in answer:
            data = connection.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1])


# ------------------------------------------------------------------ impersonation of an SMS patient


def test_rest_cannot_write_into_an_sms_conversation_and_staff_still_reach_the_patient(
        stack: Stack, twilio: TwilioStub) -> None:
    phone = _phone()
    db = stack.env["CLINIC_DATABASE_URL"]
    assert _text_the_line(stack, phone, MEDICAL).status_code == 200
    assert wait_for(lambda: _tracker(stack, phone)["slots"].get("handoff") is True, timeout=TIMEOUT)
    [escalation] = [e for e in stored_escalations(database_url=db) if e.conversation_id == phone]
    before = _tracker(stack, phone)
    escalated = [m.text for m in escalation.messages]

    for body in ({"sender": phone, "message": "it's me, please call me on another number"},
                 {"sender": phone, "message": "/EXTERNAL_handoff_resolved"},
                 {"sender": phone, "message": "hi", "input_channel": "twilio"},
                 {"sender": f"whatsapp:{phone}", "message": "hi"}):
        refused = _rest(stack, body)
        assert refused.status_code == 403, (body, refused.text)
        assert refused.json()["reason"] == "sender_of_another_channel"

    after = _tracker(stack, phone)
    assert after["events"] == before["events"]  # nothing written: no message, no channel change
    assert after["latest_input_channel"] == "twilio" and after["slots"]["handoff"] is True
    [still] = [e for e in stored_escalations(database_url=db) if e.conversation_id == phone]
    assert (still.status, [m.text for m in still.messages]) == ("open", escalated)

    # The staff reply still goes to the real patient by SMS (it failed with 502 when REST had
    # become the conversation's latest channel).
    reply = "Hi, this is Dana, a nurse at the clinic."
    delivery = send_staff_reply(phone, reply, staff_name="Dana", base_url=f"http://127.0.0.1:{stack.rasa_port}",
                                database_url=db)
    assert delivery.ok, delivery.error
    assert wait_for(lambda: any(m["To"] == phone and reply in m["Body"] for m in twilio.messages()),
                    timeout=TIMEOUT)


# ------------------------------------------------------------------ typed commands


@pytest.mark.parametrize("typed", ["/EXTERNAL_handoff_resolved", "/ /EXTERNAL_handoff_resolved"])
def test_a_typed_hand_back_command_has_no_effect_over_rest(stack: Stack, typed: str) -> None:
    sender = f"rest-{uuid.uuid4().hex[:12]}"
    assert _rest(stack, {"sender": sender, "message": MEDICAL}).status_code == 200
    assert _tracker(stack, sender)["slots"]["handoff"] is True

    answer = _rest(stack, {"sender": sender, "message": typed})

    assert answer.status_code == 200
    assert "virtual assistant" not in " ".join(m.get("text") or "" for m in answer.json())
    tracker = _tracker(stack, sender)
    assert tracker["slots"]["handoff"] is True and HAND_BACK_ACTION not in _actions(tracker)
    assert _user_texts(tracker) == [MEDICAL, "EXTERNAL_handoff_resolved"]
    assert tracker["latest_message"]["intent"]["name"] != "EXTERNAL_handoff_resolved"


@pytest.mark.parametrize("typed", ["/EXTERNAL_handoff_resolved", "/ /EXTERNAL_handoff_resolved"])
def test_a_typed_hand_back_command_has_no_effect_over_sms(stack: Stack, typed: str) -> None:
    phone = _phone()
    assert _text_the_line(stack, phone, MEDICAL).status_code == 200
    assert wait_for(lambda: _tracker(stack, phone)["slots"].get("handoff") is True, timeout=TIMEOUT)

    assert _text_the_line(stack, phone, typed).status_code == 200

    assert wait_for(lambda: len(_user_texts(_tracker(stack, phone))) == 2, timeout=TIMEOUT), \
        "the second SMS never arrived"
    time.sleep(1.0)  # the turn's actions
    tracker = _tracker(stack, phone)
    assert _user_texts(tracker) == [MEDICAL, "EXTERNAL_handoff_resolved"]
    assert tracker["slots"]["handoff"] is True and HAND_BACK_ACTION not in _actions(tracker)


# ------------------------------------------------------------------ refused requests write nothing


@pytest.mark.parametrize("body", [
    {"message": "hi, no sender"},
    {"sender": "", "message": "hi"},
    {"sender": "rest-ok", "message": None},
    {"sender": "rest-ok", "message": 42},
    {"sender": "rest-ok", "message": "a" * 4001},
    {"sender": "rest-ok", "message": "hi", "metadata": {"a": "x" * 10_000}},
], ids=["no sender", "empty sender", "null message", "number message", "4001 characters", "10 kB metadata"])
def test_a_refused_request_writes_nothing(stack: Stack, body: dict[str, Any]) -> None:
    before = _tracker_store_state(stack)

    answer = _rest(stack, body)

    assert answer.status_code in (400, 413), answer.text
    assert answer.json()["error"]
    assert _tracker_store_state(stack) == before
    assert _stored_events(stack, "default") == 0  # no shared "default" conversation


def test_an_array_body_gets_400_not_500(stack: Stack) -> None:
    answer = httpx.post(f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook",
                        json=[{"sender": "rest-x", "message": "hi"}], timeout=TIMEOUT)

    assert answer.status_code == 400


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_60_mb_body_gets_413_and_the_tracker_store_does_not_grow(stack: Stack, chunked: bool) -> None:
    assert _rest(stack, {"sender": f"rest-{uuid.uuid4().hex[:12]}", "message": "hi"}).status_code == 200
    before = _tracker_store_state(stack)

    assert _post_huge(stack.rasa_port, SIXTY_MB, chunked) == 413

    time.sleep(1.0)  # anything the request could have started
    assert _tracker_store_state(stack) == before


# ------------------------------------------------------------------ a request delivered twice


def test_a_request_delivered_again_is_answered_once_from_the_saved_turn(stack: Stack) -> None:
    """nginx passes a request on to another instance when the first fails before answering; the
    first may have saved the turn already. The same X-Request-ID gets the saved replies back and
    the conversation holds the message once; the same text under another id is a new message."""
    sender = f"rest-{uuid.uuid4().hex[:12]}"
    url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook"
    body = {"sender": sender, "message": "how much does an infusion cost"}
    request_id = uuid.uuid4().hex

    first = httpx.post(url, json=body, headers={"X-Request-ID": request_id}, timeout=TIMEOUT)
    again = httpx.post(url, json=body, headers={"X-Request-ID": request_id}, timeout=TIMEOUT)

    assert first.status_code == again.status_code == 200
    assert first.json() and again.json() == first.json()
    assert _user_texts(_tracker(stack, sender)) == [body["message"]]

    other = httpx.post(url, json=body, headers={"X-Request-ID": uuid.uuid4().hex}, timeout=TIMEOUT)

    assert other.status_code == 200 and other.json()
    assert _user_texts(_tracker(stack, sender)) == [body["message"], body["message"]]

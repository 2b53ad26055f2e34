"""Real local servers for the scheduling tests (127.0.0.1 only).

* :class:`FakeCalcom`: Cal.com's API v2 as documented for slots, bookings, reschedule and
  cancel: bearer API key, ``cal-api-version`` per endpoint, ``{"status": "success", "data": ...}``
  answers and ``{"status": "error", "error": {"code", "message"}}`` errors.
* :class:`WebhookReceiver`: a clinic's receiver that verifies each delivery's signature.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from clinic.booking.scheduling.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

HOST = "127.0.0.1"
API_KEY = "cal_test_0123456789abcdef"
SLOTS_VERSION = "2024-09-04"
BOOKINGS_VERSION = "2024-08-13"
TAKEN_MESSAGE = "User either already has booking at this time or is not available"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _utc_text(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse(text: str) -> datetime:
    if len(text) == 10:  # a date alone: the start of that day (UTC)
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Received:
    """One request the server got."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.port = free_port()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                received = Received(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                                    {k.lower(): v for k, v in self.headers.items()}, body)
                owner.requests.append(received)
                status, answer = owner.answer(received)
                data = json.dumps(answer).encode("utf-8") if not isinstance(answer, bytes) else answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self._httpd = ThreadingHTTPServer((HOST, self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def answer(self, received: Received) -> tuple[int, Any]:
        raise NotImplementedError


def error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    """Cal.com's error answer."""
    return status, {"status": "error", "timestamp": datetime.now(timezone.utc).isoformat(),
                    "path": "", "error": {"code": code, "message": message}}


@dataclass
class FakeCalcom(_Server):
    """Cal.com for one event type: free slot starts, bookings, and errors on demand."""

    event_type_id: int = 4242
    length_minutes: int = 30
    free: set[datetime] = field(default_factory=set)  # UTC starts
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: tuple[int, Any] | None = None  # the next answer, whatever was asked
    delay: float = 0.0
    pending: bool = False  # bookings need the host's confirmation

    def __post_init__(self) -> None:
        _Server.__init__(self)

    def answer(self, received: Received) -> tuple[int, Any]:
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            failure, self.fail_with = self.fail_with, None
            return failure
        if received.headers.get("authorization") != f"Bearer {API_KEY}":
            return error(401, "UnauthorizedException", "Invalid Access Token.")
        if received.method == "GET" and received.path == "/v2/slots":
            return self._slots(received)
        if received.method == "POST" and received.path == "/v2/bookings":
            return self._book(received)
        parts = received.path.strip("/").split("/")
        if received.method == "POST" and len(parts) == 4 and parts[:2] == ["v2", "bookings"]:
            if received.headers.get("cal-api-version") != BOOKINGS_VERSION:
                return error(400, "BadRequestException", "cal-api-version header is wrong")
            uid, verb = parts[2], parts[3]
            if uid not in self.bookings or self.bookings[uid]["status"] == "cancelled":
                return error(404, "NotFoundException", f"Booking with uid={uid} was not found in the database")
            if verb == "cancel":
                return self._cancel(uid, received)
            if verb == "reschedule":
                return self._reschedule(uid, received)
        return error(404, "NotFoundException", "Cannot find route")

    def _slots(self, received: Received) -> tuple[int, Any]:
        if received.headers.get("cal-api-version") != SLOTS_VERSION:
            return error(400, "BadRequestException", "cal-api-version header is wrong")
        query = received.query
        if "eventTypeId" not in query or "start" not in query or "end" not in query:
            return error(400, "BadRequestException", "start, end and eventTypeId are required")
        if int(query["eventTypeId"]) != self.event_type_id:
            return error(404, "NotFoundException", "Event type not found")
        start, end = _parse(query["start"]), _parse(query["end"])
        zone = ZoneInfo(query.get("timeZone") or "UTC")
        days: dict[str, list[dict[str, str]]] = {}
        for begins in sorted(self.free):
            if start <= begins <= end:
                local = begins.astimezone(zone)
                days.setdefault(local.date().isoformat(), []).append(
                    {"start": local.isoformat(timespec="milliseconds")}
                )
        return 200, {"status": "success", "data": days}

    def _booking(self, uid: str, start: datetime, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        record = {
            "id": len(self.bookings) + 1, "uid": uid, "title": "Consultation",
            "status": "pending" if self.pending else "accepted",
            "start": _utc_text(start), "end": _utc_text(start + timedelta(minutes=self.length_minutes)),
            "duration": self.length_minutes, "eventTypeId": self.event_type_id,
            "attendees": [body.get("attendee", {})], "metadata": body.get("metadata", {}), **extra,
        }
        self.bookings[uid] = record
        return record

    def _book(self, received: Received) -> tuple[int, Any]:
        if received.headers.get("cal-api-version") != BOOKINGS_VERSION:
            return error(400, "BadRequestException", "cal-api-version header is wrong")
        body = received.json()
        attendee = body.get("attendee") or {}
        if not body.get("start") or not attendee.get("name") or not attendee.get("timeZone"):
            return error(400, "BadRequestException", "start, attendee.name and attendee.timeZone are required")
        if body.get("eventTypeId") != self.event_type_id:
            return error(404, "NotFoundException", "Event type not found")
        start = _parse(body["start"])
        if start not in self.free:
            return error(400, "BadRequestException", TAKEN_MESSAGE)
        self.free.discard(start)
        return 201, {"status": "success", "data": self._booking(uuid.uuid4().hex[:22], start, body)}

    def _reschedule(self, uid: str, received: Received) -> tuple[int, Any]:
        body = received.json()
        start = _parse(body["start"])
        if start not in self.free:
            return error(400, "BadRequestException", TAKEN_MESSAGE)
        old = self.bookings[uid]
        old["status"] = "cancelled"
        self.free.add(_parse(old["start"]))
        self.free.discard(start)
        new = self._booking(uuid.uuid4().hex[:22], start, {"attendee": old["attendees"][0],
                                                           "metadata": old["metadata"]}, rescheduledFromUid=uid)
        return 201, {"status": "success", "data": new}

    def _cancel(self, uid: str, received: Received) -> tuple[int, Any]:
        record = self.bookings[uid]
        record["status"] = "cancelled"
        record["cancellationReason"] = received.json().get("cancellationReason")
        self.free.add(_parse(record["start"]))
        return 200, {"status": "success", "data": record}


class WebhookReceiver(_Server):
    """The clinic's endpoint: verifies each delivery, answers 401 when the signature is wrong."""

    def __init__(self, secret: str, status: int = 200) -> None:
        super().__init__()
        self.secret = secret
        self.status = status
        self.verified: list[bool] = []

    def answer(self, received: Received) -> tuple[int, Any]:
        ok = verify_signature(self.secret, received.body, received.headers.get(TIMESTAMP_HEADER.lower()),
                              received.headers.get(SIGNATURE_HEADER.lower()))
        self.verified.append(ok)
        if not ok:
            return 401, {"error": "bad signature"}
        return self.status, {"received": True}

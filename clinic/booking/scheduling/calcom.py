"""Cal.com (API v2): free slots of one event type, and bookings created, moved and cancelled there.

Endpoints (https://cal.com/docs/api-reference/v2), all with ``Authorization: Bearer <api key>``
and the ``cal-api-version`` header each endpoint documents:

* ``GET /v2/slots?eventTypeId=&start=&end=&timeZone=`` (``2024-09-04``): ``{"status": "success",
  "data": {"2026-11-24": [{"start": "2026-11-24T09:00:00.000-06:00"}, ...]}}``.
* ``POST /v2/bookings`` (``2024-08-13``): ``{"start": <UTC ISO>, "eventTypeId": n, "attendee":
  {"name", "email", "timeZone", "phoneNumber", "language"}, "metadata": {...}}`` ->
  ``{"status": "success", "data": {"uid", "start", "end", "status": "accepted" | "pending", ...}}``.
* ``POST /v2/bookings/{uid}/reschedule`` (``2024-08-13``): ``{"start", "reschedulingReason"}`` ->
  the new booking (Cal.com gives it a new uid).
* ``POST /v2/bookings/{uid}/cancel`` (``2024-08-13``): ``{"cancellationReason"}``.

Errors come as ``{"status": "error", "error": {"code": "BadRequestException", "message": ...}}``
with a 4xx/5xx status. A time that is no longer free is a 400/409 whose message says so
(:class:`SlotTaken`); 5xx, 429, timeouts and unreachable hosts are :class:`SchedulerUnavailable`;
everything else :class:`SchedulerError`. Error texts never carry the answer's message (it may
echo patient details), the API key or the URL.

Settings: ``CALCOM_API_KEY`` (required), ``CALCOM_API_URL`` (default ``https://api.cal.com``;
tests point it at a local server), and ``booking.calcom_event_type_id`` in clinic.yml.
Assumptions (not visible from the docs): a patient without an email is booked with their phone
number only (the event type must not require an email); the visit reason is not sent to Cal.com.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.exc import SQLAlchemyError

from clinic.booking.scheduling import (
    Appointment,
    BookingDraft,
    Placed,
    SchedulerError,
    SchedulerUnavailable,
    Slot,
    SlotTaken,
    secure_url,
)
from clinic.booking.scheduling.records import booking_appointment, new_booking_row
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, session_scope
from clinic.profile import ClinicProfile

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.cal.com"
SLOTS_API_VERSION = "2024-09-04"
BOOKINGS_API_VERSION = "2024-08-13"
TIMEOUT = 8.0
# How Cal.com says a time cannot be booked (error codes and messages of handleNewBooking).
_TAKEN_RE = re.compile(
    r"no_available_users|already has (?:a )?booking|not available|unavailable|slot.{0,20}(?:taken|booked)|"
    r"out_of_bounds|booking_time_out|conflict",
    re.I,
)


def _iso_utc(when: datetime) -> str:
    return as_utc(when).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(text: Any) -> datetime:
    """A Cal.com timestamp ("2026-11-24T09:00:00.000-06:00", "...Z") as an aware datetime.

    Raises:
        ValueError: not a timestamp with an offset.
    """
    value = str(text).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without an offset")
    return parsed


class CalcomClient:
    """A small client of Cal.com's API v2 (standard library HTTP)."""

    def __init__(self, api_key: str, api_url: str = DEFAULT_API_URL, timeout: float = TIMEOUT) -> None:
        """Args:
            api_key: the Cal.com API key (``cal_live_...``); a secret, never logged.
            api_url: the API's base URL, without ``/v2``.
            timeout: seconds to wait for each answer.

        Raises:
            SchedulerError: the URL is not an http(s) URL.
        """
        secure_url(api_url, "CALCOM_API_URL")
        self._key = api_key
        self._base = api_url.rstrip("/")
        self._timeout = timeout

    def request(self, method: str, path: str, *, version: str, query: Mapping[str, Any] | None = None,
                body: Mapping[str, Any] | None = None) -> Any:
        """One API call; returns the answer's ``data``.

        Raises:
            SlotTaken: the time asked for cannot be booked.
            SchedulerUnavailable: Cal.com is down, overloaded or did not answer in time.
            SchedulerError: any other refusal, or an answer that is not the documented shape.
        """
        url = f"{self._base}{path}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {"Authorization": f"Bearer {self._key}", "cal-api-version": version, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - http(s) only
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc) from None
        except urllib.error.URLError as exc:
            raise SchedulerUnavailable(f"Cal.com unreachable ({_reason(exc.reason)})") from None
        except TimeoutError:
            raise SchedulerUnavailable(f"Cal.com timed out after {self._timeout:g} s") from None
        except OSError as exc:
            raise SchedulerUnavailable(f"Cal.com connection failed ({_reason(exc)})") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise SchedulerError("Cal.com sent an answer that is not JSON") from None
        if not isinstance(answer, dict) or answer.get("status") != "success" or "data" not in answer:
            raise SchedulerError("Cal.com sent an answer without success data")
        return answer["data"]

    def slots(
        self, event_type_id: int, start: datetime, end: datetime, time_zone: str
    ) -> list[tuple[datetime, datetime | None]]:
        """Free slot starts (and ends, when given) of the event type in ``[start, end]``."""
        data = self.request("GET", "/v2/slots", version=SLOTS_API_VERSION, query={
            "eventTypeId": event_type_id, "start": _iso_utc(start), "end": _iso_utc(end), "timeZone": time_zone,
        })
        if isinstance(data, dict) and isinstance(data.get("slots"), dict):  # the 2024-04-15 shape
            data = data["slots"]
        if not isinstance(data, dict):
            raise SchedulerError("Cal.com sent slots in an unknown shape")
        found = []
        try:
            for items in data.values():
                for item in items:
                    begins = parse_time(item.get("start") or item.get("time"))
                    ends = parse_time(item["end"]) if item.get("end") else None
                    found.append((begins, ends))
        except (AttributeError, TypeError, ValueError, KeyError):
            raise SchedulerError("Cal.com sent a slot that is not a time") from None
        return sorted(found, key=lambda pair: pair[0])

    def create_booking(self, event_type_id: int, start: datetime, attendee: Mapping[str, Any],
                       metadata: Mapping[str, str]) -> dict[str, Any]:
        """Books ``start``; returns the booking (``uid``, ``start``, ``end``, ``status``)."""
        body = {"start": _iso_utc(start), "eventTypeId": event_type_id, "attendee": dict(attendee),
                "metadata": dict(metadata)}
        return _booking(self.request("POST", "/v2/bookings", version=BOOKINGS_API_VERSION, body=body))

    def reschedule(self, uid: str, start: datetime, reason: str) -> dict[str, Any]:
        """Moves booking ``uid`` to ``start``; returns the new booking (with its new uid)."""
        body = {"start": _iso_utc(start), "reschedulingReason": reason}
        path = f"/v2/bookings/{quote(uid, safe='')}/reschedule"
        return _booking(self.request("POST", path, version=BOOKINGS_API_VERSION, body=body))

    def cancel(self, uid: str, reason: str) -> None:
        """Cancels booking ``uid``."""
        path = f"/v2/bookings/{quote(uid, safe='')}/cancel"
        self.request("POST", path, version=BOOKINGS_API_VERSION, body={"cancellationReason": reason})


def _booking(data: Any) -> dict[str, Any]:
    booking = data[0] if isinstance(data, list) and data else data
    if not isinstance(booking, dict) or not booking.get("uid") or not booking.get("start"):
        raise SchedulerError("Cal.com sent a booking without uid or start")
    try:
        booking["start_at"] = parse_time(booking["start"])
        booking["end_at"] = parse_time(booking["end"]) if booking.get("end") else None
    except ValueError:
        raise SchedulerError("Cal.com sent a booking time that is not a time") from None
    return booking


def _http_error(exc: urllib.error.HTTPError) -> Exception:
    """The exception for an error answer (its message is read, never repeated)."""
    status = exc.code
    try:
        answer = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        answer = {}
    finally:
        exc.close()
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    text = f"{code} {error.get('message') or ''} {answer.get('message', '') if isinstance(answer, dict) else ''}"
    label = re.sub(r"[^A-Za-z0-9_]", "", code)[:60] or "no error code"
    if status in (400, 409, 422) and _TAKEN_RE.search(text):
        return SlotTaken(f"Cal.com: the time is not available (HTTP {status})")
    if status in (401, 403):
        return SchedulerError(f"Cal.com refused the API key (HTTP {status})")
    if status == 404:
        return SchedulerError(f"Cal.com has no such booking or event type (HTTP 404, {label})")
    if status in (408, 429) or status >= 500:
        return SchedulerUnavailable(f"Cal.com answered HTTP {status} ({label})")
    return SchedulerError(f"Cal.com refused the request (HTTP {status}, {label})")


def _reason(reason: object) -> str:
    """A connection error's kind without its text (which may name the host)."""
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    return type(reason).__name__


class CalcomScheduler:
    """Bookings in Cal.com, with a local record (code, patient details) in the clinic database."""

    name = "calcom"
    books_instantly = True

    def __init__(self, profile: ClinicProfile, client: CalcomClient, database_url: str | None = None) -> None:
        if profile.booking.calcom_event_type_id is None:
            raise SchedulerError("booking.calcom_event_type_id is not set in clinic.yml")
        self.profile = profile
        self.client = client
        self.event_type_id = profile.booking.calcom_event_type_id
        self.database_url = database_url

    @classmethod
    def from_env(cls, profile: ClinicProfile, environ: Mapping[str, str]) -> CalcomScheduler:
        """Reads ``CALCOM_API_KEY`` and ``CALCOM_API_URL``.

        Raises:
            SchedulerError: the key is not set, or the URL is not a URL.
        """
        key = (environ.get("CALCOM_API_KEY") or "").strip()
        if not key:
            raise SchedulerError("the calcom backend needs CALCOM_API_KEY")
        url = (environ.get("CALCOM_API_URL") or "").strip() or DEFAULT_API_URL
        return cls(profile, CalcomClient(key, url))

    def _url(self, database_url: str | None) -> str | None:
        return database_url or self.database_url

    def open_slots(self, start: datetime, end: datetime, database_url: str | None = None) -> list[Slot]:
        """The event type's free slots starting in ``[start, end)``."""
        length = timedelta(minutes=self.profile.booking.slot_minutes)
        tz = self.profile.tz
        found = self.client.slots(self.event_type_id, start, end, self.profile.timezone)
        return [
            Slot(begins.astimezone(tz), (ends or begins + length).astimezone(tz))
            for begins, ends in found
            if as_utc(start) <= as_utc(begins) < as_utc(end)
        ]

    def book(self, draft: BookingDraft, database_url: str | None = None) -> Placed:
        """Books in Cal.com, then records the booking (and its code) in the clinic database.

        If the local record cannot be written, the Cal.com booking is cancelled again so the
        two never disagree, and the database error is raised.
        """
        patient = draft.patient
        attendee: dict[str, Any] = {"name": patient.full_name, "timeZone": self.profile.timezone,
                                    "phoneNumber": patient.phone, "language": "en"}
        if patient.email:
            attendee["email"] = patient.email
        metadata = {"source": "clinic-assistant", "channel": draft.channel,
                    "patientType": patient.patient_type or "", "smsReminders": "yes" if patient.sms_consent else "no"}
        made = self.client.create_booking(self.event_type_id, draft.slot.start, attendee, metadata)
        start = made["start_at"]
        end = made["end_at"] or start + timedelta(minutes=self.profile.booking.slot_minutes)
        status = "pending" if str(made.get("status", "")).lower() == "pending" else "booked"
        try:
            with session_scope(self._url(database_url)) as session:
                row = new_booking_row(session, draft, backend=self.name, status=status, external_uid=str(made["uid"]),
                                      slot=Slot(start, end))
                appointment = booking_appointment(row)
        except SQLAlchemyError:
            logger.error("a Cal.com booking was made but could not be recorded; cancelling it in Cal.com")
            try:
                self.client.cancel(str(made["uid"]), "The clinic could not record this booking")
            except (SchedulerError, SlotTaken):
                logger.error("could not cancel the unrecorded Cal.com booking: staff must check Cal.com")
            raise
        logger.info("booking %s made (calcom, status=%s, channel=%s)", appointment.id, status, draft.channel)
        return Placed(appointment)

    def reschedule(self, appointment: Appointment, slot: Slot, database_url: str | None = None) -> Placed:
        """Moves the Cal.com booking; the local record follows (same code, Cal.com's new uid)."""
        if not appointment.external_uid:
            raise SchedulerError("the booking has no Cal.com uid")
        made = self.client.reschedule(appointment.external_uid, slot.start,
                                      "The patient asked to move it through the clinic assistant")
        start = made["start_at"]
        end = made["end_at"] or start + timedelta(minutes=self.profile.booking.slot_minutes)
        with session_scope(self._url(database_url)) as session:
            row = session.get(Booking, appointment.id)
            if row is None:
                raise SchedulerError("no such booking")
            row.starts_at, row.ends_at, row.external_uid = as_utc(start), as_utc(end), str(made["uid"])
            if str(made.get("status", "")).lower() == "pending":
                row.status = "pending"
            session.flush()
            moved = booking_appointment(row)
        logger.info("booking %s moved (calcom)", appointment.id)
        return Placed(moved)

    def cancel(self, appointment: Appointment, by: str, database_url: str | None = None) -> None:
        """Cancels the Cal.com booking, then the local record."""
        if not appointment.external_uid:
            raise SchedulerError("the booking has no Cal.com uid")
        reason = "Cancelled by the patient" if by == "patient" else "Cancelled by the clinic"
        self.client.cancel(appointment.external_uid, reason)
        with session_scope(self._url(database_url)) as session:
            row = session.get(Booking, appointment.id)
            if row is not None and row.status != "cancelled":
                row.status, row.cancelled_at, row.cancelled_by = "cancelled", utcnow(), by
        logger.info("booking %s cancelled (calcom)", appointment.id)

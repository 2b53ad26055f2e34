"""The built-in calendar: open times from clinic.yml, bookings in the clinic database.

Slots start at each day's opening time and follow each other every ``booking.slot_minutes``
until closing, on open weekdays that are not ``booking.blocked_dates``. Each slot has
``booking.chairs`` places. Times are wall-clock times in the clinic's time zone: on the day
clocks go forward the skipped times have no slot; on the day they go back a repeated time has
one slot (its first occurrence).

No double booking: a booking holds a chair, and a partial unique index allows one booked
consultation per start time and chair. Booking tries the chairs in order, each in its own
transaction; whoever commits first wins, the others get :class:`SlotTaken` (also under
concurrent requests, on SQLite and PostgreSQL).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clinic.booking.scheduling import Appointment, BookingDraft, Placed, SchedulerError, Slot, SlotTaken
from clinic.booking.scheduling.records import booking_appointment, new_booking_row
from clinic.clock import as_utc, utcnow
from clinic.db import Booking, session_scope
from clinic.profile import WEEKDAYS, ClinicProfile

logger = logging.getLogger(__name__)
_END_OF_DAY = time(23, 59)  # "24:00" in clinic.yml


def _existing(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """``wall`` (naive) as an aware time in ``tz``, or None when the clocks skip it."""
    local = wall.replace(tzinfo=tz)
    back = local.astimezone(timezone.utc).astimezone(tz)
    return local if back.replace(tzinfo=None) == wall else None


def day_slots(profile: ClinicProfile, day: date) -> list[Slot]:
    """Every consultation slot of one day (none on closed weekdays and blocked dates)."""
    hours = profile.hours[WEEKDAYS[day.weekday()]]
    if hours.opens is None or hours.closes is None or day in profile.booking.blocked_dates:
        return []
    tz = profile.tz
    step = timedelta(minutes=profile.booking.slot_minutes)
    if hours.closes >= _END_OF_DAY:
        closing = _existing(datetime.combine(day + timedelta(days=1), time(0, 0)), tz)
    else:
        closing = _existing(datetime.combine(day, hours.closes), tz)
    closing_utc = as_utc(closing) if closing else as_utc(datetime.combine(day, hours.closes, tzinfo=tz))
    slots, wall = [], datetime.combine(day, hours.opens)
    while wall.date() == day:
        local = _existing(wall, tz)
        if local is not None:
            end_utc = as_utc(local) + step
            if end_utc > closing_utc:
                break
            slots.append(Slot(local, end_utc.astimezone(tz)))
        wall += step
    return slots


def opening_slots(profile: ClinicProfile, start: datetime, end: datetime) -> list[Slot]:
    """The clinic's slots starting in ``[start, end)``, earliest first (ignoring bookings)."""
    tz = profile.tz
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    found = []
    while day <= last:
        found += [s for s in day_slots(profile, day) if as_utc(start) <= as_utc(s.start) < as_utc(end)]
        day += timedelta(days=1)
    return found


def grid_slot(profile: ClinicProfile, start: datetime) -> Slot | None:
    """The clinic's slot that starts exactly at ``start``, if there is one."""
    local_day = start.astimezone(profile.tz).date()
    return next((s for s in day_slots(profile, local_day) if as_utc(s.start) == as_utc(start)), None)


class BuiltinScheduler:
    """Availability from clinic.yml, bookings in the clinic database (see the module docstring)."""

    name = "builtin"
    books_instantly = True

    def __init__(self, profile: ClinicProfile, database_url: str | None = None) -> None:
        """Args:
            profile: the clinic profile (hours, slot length, chairs, blocked dates).
            database_url: the clinic database; default ``CLINIC_DATABASE_URL``.
        """
        self.profile = profile
        self.database_url = database_url

    def _url(self, database_url: str | None) -> str | None:
        return database_url or self.database_url

    def booked_counts(self, start: datetime, end: datetime, database_url: str | None = None) -> Counter:
        """Booked consultations per start time (UTC) in ``[start, end)``."""
        with session_scope(self._url(database_url)) as session:
            rows = session.execute(
                select(Booking.starts_at, func.count())
                .where(Booking.status == "booked", Booking.chair.is_not(None),
                       Booking.starts_at >= as_utc(start), Booking.starts_at < as_utc(end))
                .group_by(Booking.starts_at)
            ).all()
        return Counter({as_utc(starts_at): count for starts_at, count in rows})

    def open_slots(self, start: datetime, end: datetime, database_url: str | None = None) -> list[Slot]:
        """The clinic's slots in ``[start, end)`` with a chair still free."""
        counts = self.booked_counts(start, end, database_url)
        chairs = self.profile.booking.chairs
        return [s for s in opening_slots(self.profile, start, end) if counts[as_utc(s.start)] < chairs]

    def book(self, draft: BookingDraft, database_url: str | None = None) -> Placed:
        """Books the first free chair of the draft's slot.

        Raises:
            SlotTaken: every chair is booked (or the time is not a slot of the clinic any more).
        """
        slot = grid_slot(self.profile, draft.slot.start)
        if slot is None:
            raise SlotTaken("not a slot of the clinic's calendar")
        for chair in range(1, self.profile.booking.chairs + 1):
            try:
                with session_scope(self._url(database_url)) as session:
                    row = new_booking_row(session, draft, backend=self.name, chair=chair, slot=slot)
                    appointment = booking_appointment(row)
            except IntegrityError:
                continue  # someone holds this chair at this time: try the next one
            logger.info("booking %s made (builtin, chair %s, channel=%s)", appointment.id, chair, draft.channel)
            return Placed(appointment)
        raise SlotTaken("every chair is booked")

    def reschedule(self, appointment: Appointment, slot: Slot, database_url: str | None = None) -> Placed:
        """Moves a booking to the first free chair of another slot (same code).

        Raises:
            SlotTaken: the new slot has no free chair.
            SchedulerError: the booking is not booked any more.
        """
        target = grid_slot(self.profile, slot.start)
        if target is None:
            raise SlotTaken("not a slot of the clinic's calendar")
        for chair in range(1, self.profile.booking.chairs + 1):
            try:
                with session_scope(self._url(database_url)) as session:
                    row = session.get(Booking, appointment.id)
                    if row is None or row.status != "booked":
                        raise SchedulerError("the booking is not booked any more")
                    row.starts_at, row.ends_at, row.chair = as_utc(target.start), as_utc(target.end), chair
                    session.flush()
                    moved = booking_appointment(row)
            except IntegrityError:
                continue
            logger.info("booking %s moved (builtin, chair %s)", appointment.id, chair)
            return Placed(moved)
        raise SlotTaken("every chair is booked")

    def cancel(self, appointment: Appointment, by: str, database_url: str | None = None) -> None:
        """Cancels a booking: its chair is free again at once.

        Raises:
            SchedulerError: there is no such booking.
        """
        with session_scope(self._url(database_url)) as session:
            row = session.get(Booking, appointment.id)
            if row is None:
                raise SchedulerError("no such booking")
            if row.status != "cancelled":
                row.status, row.cancelled_at, row.cancelled_by = "cancelled", utcnow(), by
        logger.info("booking %s cancelled (builtin, by %s)", appointment.id, "patient" if by == "patient" else "staff")

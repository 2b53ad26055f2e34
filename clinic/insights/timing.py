"""Durations for the insights: percentiles, time inside opening hours, the clinic's promise.

``response_time`` in clinic.yml is written for patients ("within 1 business hour"); the number
and unit in it are the promise the staff's first replies are measured against. A promise in
*business* hours counts only time the clinic is open: a message at 10 PM answered at 8:30 AM
waited 30 business minutes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from clinic.profile import WEEKDAYS, ClinicProfile

_PROMISE = re.compile(r"(\d+(?:\.\d+)?)\s*(business\s+|working\s+)?(minute|min|hour|hr|day)s?\b", re.IGNORECASE)
_UNIT_SECONDS = {"minute": 60, "min": 60, "hour": 3600, "hr": 3600, "day": 86400}
MAX_BUSINESS_SPAN = timedelta(days=62)  # longer waits are counted as closed time past this


@dataclass(frozen=True)
class Promise:
    """How fast the clinic says staff answer: ``seconds``, in business time or on the clock."""

    seconds: float
    business: bool
    text: str


def parse_promise(text: str) -> Promise | None:
    """The promise in ``response_time`` ("within 1 business hour"), or None without a number and unit."""
    match = _PROMISE.search(text or "")
    if match is None:
        return None
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(3).lower()]
    return Promise(seconds, match.group(2) is not None, text)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) with linear interpolation between ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class BusinessClock:
    """Counts the time the clinic is open between two moments; each day's hours are worked out once."""

    def __init__(self, profile: ClinicProfile) -> None:
        self.profile = profile
        self.tz = profile.tz
        self._days: dict[date, tuple[float, float] | None] = {}

    def _open(self, day: date) -> tuple[float, float] | None:
        """The day's opening hours as epoch seconds, or None when closed."""
        if day not in self._days:
            hours = self.profile.hours[WEEKDAYS[day.weekday()]]
            if hours.opens is None or hours.closes is None:
                self._days[day] = None
            else:
                self._days[day] = (datetime.combine(day, hours.opens, tzinfo=self.tz).timestamp(),
                                   datetime.combine(day, hours.closes, tzinfo=self.tz).timestamp())
        return self._days[day]

    def seconds(self, start: datetime, end: datetime) -> float:
        """Seconds between ``start`` and ``end`` during which the clinic was open."""
        if end <= start:
            return 0.0
        first, last = start.timestamp(), min(end, start + MAX_BUSINESS_SPAN).timestamp()
        day, final = start.astimezone(self.tz).date(), (start + MAX_BUSINESS_SPAN).astimezone(self.tz).date()
        total = 0.0
        while day <= final:
            hours = self._open(day)
            if hours is not None:
                if hours[0] >= last:
                    return total
                total += max(min(hours[1], last) - max(hours[0], first), 0.0)
            day += timedelta(days=1)
        return total


def business_seconds(profile: ClinicProfile, start: datetime, end: datetime) -> float:
    """Seconds between ``start`` and ``end`` during which the clinic was open."""
    return BusinessClock(profile).seconds(start, end)


def within(clock: BusinessClock, promise: Promise, start: datetime, end: datetime) -> bool:
    """Whether a wait from ``start`` to ``end`` kept the promise."""
    waited = clock.seconds(start, end) if promise.business else (end - start).total_seconds()
    return waited <= promise.seconds

"""The date range of a report, in the clinic's time zone, cut into days and opening hours.

SQL buckets by these days rather than by a date function: SQLite and PostgreSQL convert time
zones differently, and a day in the clinic's zone is 23 or 25 hours long when clocks change. Each
day is a pair of UTC instants worked out here once; the queries join on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from clinic.profile import WEEKDAYS, ClinicProfile

MAX_DAYS = 400  # a report covers at most this many days (a year and a bit)
DEFAULT_DAYS = 30


class InvalidPeriod(ValueError):
    """A date range that cannot be reported on (the message says why, for people)."""


@dataclass(frozen=True)
class Day:
    """One day of the report: its UTC bounds and, when the clinic opens that day, its opening hours."""

    day: date
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    opens: datetime | None  # UTC; None when closed all day
    closes: datetime | None


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last`` (both included) in time zone ``tz``."""

    first: date
    last: date
    tz: ZoneInfo
    days: tuple[Day, ...]

    @property
    def start(self) -> datetime:
        return self.days[0].start

    @property
    def end(self) -> datetime:
        return self.days[-1].end

    def day_of(self, moment: datetime) -> date | None:
        """The report day of a moment (None when outside the period)."""
        local = moment.astimezone(self.tz).date()
        return local if self.first <= local <= self.last else None


def _utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz).astimezone(timezone.utc)


def make_period(first: date, last: date, profile: ClinicProfile) -> Period:
    """The period from ``first`` to ``last`` with the clinic's time zone and opening hours.

    Raises:
        InvalidPeriod: ``last`` before ``first``, or more than :data:`MAX_DAYS` days.
    """
    if last < first:
        raise InvalidPeriod("The end date is before the start date.")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise InvalidPeriod(f"A report covers at most {MAX_DAYS} days.")
    tz = profile.tz
    days = []
    for offset in range(count):
        day = first + timedelta(days=offset)
        hours = profile.hours[WEEKDAYS[day.weekday()]]
        open_ = hours.opens is not None and hours.closes is not None
        days.append(Day(
            day=day,
            start=_utc(day, time(0), tz),
            end=_utc(day + timedelta(days=1), time(0), tz),
            opens=_utc(day, hours.opens, tz) if open_ and hours.opens is not None else None,
            closes=_utc(day, hours.closes, tz) if open_ and hours.closes is not None else None,
        ))
    return Period(first, last, tz, tuple(days))


def parse_period(
    raw_from: str | None, raw_to: str | None, profile: ClinicProfile, today: date
) -> Period:
    """The period of ``from`` / ``to`` query values (``YYYY-MM-DD``); missing ones default to the
    last :data:`DEFAULT_DAYS` days up to ``today``.

    Raises:
        InvalidPeriod: a date that is not ``YYYY-MM-DD``, or a range :func:`make_period` refuses.
    """
    last = _date(raw_to, "to") if raw_to else today
    first = _date(raw_from, "from") if raw_from else last - timedelta(days=DEFAULT_DAYS - 1)
    return make_period(first, last, profile)


def _date(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidPeriod(f"{name} must be a date written YYYY-MM-DD.") from None

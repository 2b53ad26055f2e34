"""Business hours: whether the clinic is open now and when it next opens."""

from __future__ import annotations

from datetime import datetime, timedelta

from clinic.profile import WEEKDAYS, ClinicProfile, clock_text


def is_open(profile: ClinicProfile, at: datetime) -> bool:
    """Whether ``at`` (any time zone) falls inside the clinic's opening hours."""
    local = at.astimezone(profile.tz)
    hours = profile.hours[WEEKDAYS[local.weekday()]]
    if hours.opens is None or hours.closes is None:  # closed that weekday
        return False
    return hours.opens <= local.time() < hours.closes


def next_opening(profile: ClinicProfile, at: datetime) -> datetime | None:
    """The next time the clinic opens after ``at``, in the clinic's time zone.

    Returns ``None`` when the clinic is never open (all days closed).
    """
    local = at.astimezone(profile.tz)
    for offset in range(0, 8):
        day = (local + timedelta(days=offset)).date()
        hours = profile.hours[WEEKDAYS[day.weekday()]]
        if hours.opens is None:  # closed that weekday
            continue
        opening = datetime.combine(day, hours.opens, tzinfo=profile.tz)
        if opening > local:
            return opening
    return None


def describe_next_opening(profile: ClinicProfile, at: datetime) -> str:
    """Human words for the next opening: "tomorrow (Tuesday) at 8 AM", "Monday at 9 AM"."""
    opening = next_opening(profile, at)
    if opening is None:
        return "as soon as the clinic reopens"
    local = at.astimezone(profile.tz)
    days = (opening.date() - local.date()).days
    clock = clock_text(opening.time())
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow ({opening:%A}) at {clock}"
    return f"{opening:%A} at {clock}"

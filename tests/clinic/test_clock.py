"""clinic.clock: every moment as an aware UTC datetime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from clinic.clock import as_utc, utcnow

CHICAGO_WINTER = timezone(timedelta(hours=-6))


def test_now_is_aware_and_in_utc() -> None:
    assert utcnow().utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2031, 3, 3, 15, 0), datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc)),  # naive, as SQLite: UTC
        (datetime(2031, 3, 3, 9, 0, tzinfo=CHICAGO_WINTER), datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc)),
        (datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc), datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc)),
        (None, None),
    ],
)
def test_as_utc(value: datetime | None, expected: datetime | None) -> None:
    converted = as_utc(value)

    assert converted == expected
    assert converted is None or converted.tzinfo is timezone.utc

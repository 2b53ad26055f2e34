"""clinic.booking.scheduling: booking codes, the backend choice and safe URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from clinic.booking.scheduling import (
    CODE_ALPHABET,
    SchedulerError,
    Slot,
    code_candidates,
    get_scheduler,
    new_code,
    secure_url,
)
from clinic.booking.scheduling.builtin import BuiltinScheduler
from clinic.clock import as_utc
from tests.clinic.booking.scheduling.helpers import booking_settings


def test_codes_are_six_unambiguous_characters() -> None:
    codes = {new_code() for _ in range(500)}

    assert len(codes) == 500
    assert all(len(c) == 6 and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("IO01") & set(CODE_ALPHABET)


@pytest.mark.parametrize(
    ("typed", "candidates"),
    [
        ("K7M4QX", ["K7M4QX"]),
        ("k7m4qx", ["K7M4QX"]),
        ("k7m-4qx", ["K7M4QX"]),
        ("K7M 4QX", ["K7M4QX"]),
        ("my code is K7M4QX.", ["K7M4QX"]),
        ("thanks, it's K7M4QX", ["THANKS", "K7M4QX"]),  # each is looked up
        ("K7M4Q", []),
        ("K7M4QX9", []),
        ("IOIO01", []),  # letters no code has
        ("", []),
    ],
)
def test_codes_are_read_as_patients_type_them(typed: str, candidates: list[str]) -> None:
    assert code_candidates(typed) == candidates


def test_the_default_backend_is_the_builtin_calendar(make_profile) -> None:
    assert isinstance(get_scheduler(make_profile(booking=booking_settings()), {}), BuiltinScheduler)


def test_another_backend_can_be_asked_for(make_profile) -> None:
    profile = make_profile(booking=booking_settings(backend="webhook"))

    assert isinstance(get_scheduler(profile, {}, backend="builtin"), BuiltinScheduler)
    with pytest.raises(SchedulerError, match="calcom_event_type_id"):
        get_scheduler(profile, {"CALCOM_API_KEY": "cal_x"}, backend="calcom")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.cal.com", True),
        ("http://127.0.0.1:8080/hook", True),
        ("http://localhost/hook", True),
        ("http://api.cal.com", False),
        ("ftp://api.cal.com", False),
        ("api.cal.com", False),
        ("https://", False),
    ],
)
def test_only_https_urls_or_this_machine_are_accepted(url: str, ok: bool) -> None:
    if ok:
        assert secure_url(url, "X_URL") == url
    else:
        with pytest.raises(SchedulerError, match="X_URL must be an https:// URL"):
            secure_url(url, "X_URL")


def test_slot_keys_and_utc() -> None:
    local = datetime(2031, 3, 3, 9, 0, tzinfo=timezone(timedelta(hours=-6)))

    assert Slot(local, local + timedelta(minutes=30)).key == "2031-03-03T15:00:00+00:00"
    assert as_utc(datetime(2031, 3, 3, 15, 0)) == datetime(2031, 3, 3, 15, 0, tzinfo=timezone.utc)  # naive: UTC

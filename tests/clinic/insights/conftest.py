"""Fixtures of the insights tests: the hand-built day (scenario.py) in a clinic database that also
holds the tracker store's table, as in production, once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from clinic.insights.period import Period, make_period
from clinic.profile import ClinicProfile
from tests.clinic.insights import scenario


@pytest.fixture
def profile(make_profile: Callable[..., ClinicProfile]) -> ClinicProfile:
    """The sample clinic (Chicago, open 08:00-18:00 on weekdays, "within 1 business hour")."""
    return make_profile()


@pytest.fixture
def scenario_db(database_url: str) -> str:
    """A clinic database with the scenario's conversations (tracker ``events``) and records."""
    scenario.write_tracker(database_url)
    scenario.write_clinic(database_url)
    return database_url


@pytest.fixture
def period(profile: ClinicProfile) -> Period:
    """The scenario's Tuesday and the Wednesday after it."""
    return make_period(date(2026, 11, 10), date(2026, 11, 11), profile)

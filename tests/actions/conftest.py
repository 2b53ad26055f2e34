"""Fixtures for the custom actions: a clinic database, a clinic profile and trackers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions._common import profile_cache
from tests.hours import WEEKDAY_HOURS

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def clinic_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The actions' database (CLINIC_DATABASE_URL): a fresh, migrated SQLite file."""
    monkeypatch.setenv("CLINIC_DATABASE_URL", sqlite_url)
    return sqlite_url


@pytest.fixture
def broken_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database the actions cannot write to (it has no tables)."""
    from clinic.db import get_engine

    url = f"sqlite:///{tmp_path / 'no-tables.db'}"
    monkeypatch.setenv("CLINIC_DATABASE_URL", url)
    yield url
    get_engine(url).dispose()


@pytest.fixture
def use_profile(profile_file, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Points the actions at a temp clinic.yml with the given changes."""

    def use(**changes: Any) -> None:
        monkeypatch.setenv("CLINIC_PROFILE", str(profile_file(**changes)))
        profile_cache.cache_clear()

    use(hours=WEEKDAY_HOURS, timezone="America/Chicago")
    yield use
    profile_cache.cache_clear()


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    """domain.yml as the action server receives it (a plain dict)."""
    return yaml.safe_load((PROJECT_DIR / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()

"""Shared fixtures: the clinic profile, the safety guard and fresh clinic databases.

Every database test gets its own database: a new SQLite file, or (when PostgreSQL is
reachable, or under ``CI=true``) a new PostgreSQL schema that is dropped afterwards.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sanic  # noqa: F401 - see below
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clinic.db import get_engine, migrate
from clinic.profile import DEFAULT_PATH, ClinicProfile

# sanic (imported by Rasa) adds a global "once" filter for DeprecationWarning when it is first
# imported, which would override `filterwarnings = error` for the rest of that test or of the
# collection. Imported here, while pytest loads this conftest and then discards filter changes,
# it cannot do that later.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


# ------------------------------------------------------------------ isolation from the host


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads a developer's .env choices or writes to var/: defaults point to a temp dir."""
    var_dir = tmp_path_factory.getbasetemp() / "var"
    monkeypatch.setenv("CLINIC_DATABASE_URL", f"sqlite:///{var_dir / 'clinic-unmigrated.db'}")
    monkeypatch.setenv("TRACKER_STORE_URL", f"sqlite:///{var_dir / 'tracker-unused.db'}")
    monkeypatch.delenv("CLINIC_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def _rasa_patches_removed() -> Iterator[None]:
    """The Rasa patches a test installs (building a ``ClinicNLG`` installs them) are removed when
    it ends, so the next test meets Rasa as it is; those installed before it stay."""
    from addons import rasa_patches

    before = rasa_patches.installed()
    yield
    for patch in reversed(rasa_patches.installed()):
        if patch not in before:
            patch.uninstall()


# ------------------------------------------------------------------ clinic profile


@pytest.fixture(scope="session")
def clinic_raw() -> dict[str, Any]:
    """The project's clinic.yml as plain data (copy it before changing it)."""
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def make_profile(clinic_raw: dict[str, Any]) -> Callable[..., ClinicProfile]:
    """Builds a profile from clinic.yml with some fields replaced: ``make_profile(hours={...})``."""

    def build(**changes: Any) -> ClinicProfile:
        raw = copy.deepcopy(clinic_raw)
        raw.update(changes)
        return ClinicProfile.parse_obj(raw)

    return build


@pytest.fixture
def profile_file(tmp_path: Path, clinic_raw: dict[str, Any]) -> Callable[..., Path]:
    """Writes a copy of clinic.yml (with changes) to a temp file and returns its path."""

    def write(**changes: Any) -> Path:
        raw = copy.deepcopy(clinic_raw)
        raw.update(changes)
        path = tmp_path / "clinic.yml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path

    return write


# ------------------------------------------------------------------ safety guard


@pytest.fixture(scope="session")
def guard():
    """The project's safety guard, built once per session (building it takes about a second)."""
    from clinic.safety.guard import default_guard

    return default_guard()


# ------------------------------------------------------------------ clinic databases


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated SQLite clinic database."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    migrate(url)
    yield url
    get_engine(url).dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server for the database tests; skips (or, under CI, fails) when unreachable."""
    url = os.environ.get("CLINIC_TEST_POSTGRES_URL") or POSTGRES_DEFAULT_URL
    engine = create_engine(url, future=True, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not reachable"
        where = make_url(url).render_as_string(hide_password=True)
        if running_in_ci():
            pytest.fail(f"PostgreSQL not reachable at {where} ({type(exc).__name__}); CI=true requires it "
                        "(set CLINIC_TEST_POSTGRES_URL to the CI database)", pytrace=False)
        pytest.skip(f"PostgreSQL not reachable at {where} ({type(exc).__name__}); "
                    "set CLINIC_TEST_POSTGRES_URL or run under CI=true")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL clinic database: a new schema, dropped after the test."""
    schema = f"clinic_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, future=True)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        migrate(url_text)
        yield url_text
    finally:
        get_engine(url_text).dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated clinic database URL: once on SQLite, once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")

"""Fixtures that run the real assistant (trained model, Rasa server, action server)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinic.launcher import Stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model() -> str:
    """The trained model `make pytest` passes in (the Makefile trains it first)."""
    path = os.environ.get("CLINIC_MODEL")
    if not path or not Path(path).exists():
        pytest.fail("CLINIC_MODEL is not set to a trained model; run the suite with `make pytest`")
    return path


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh SQLite databases for one test's assistant."""
    env = {
        "CLINIC_VAR_DIR": str(tmp_path),
        "CLINIC_DATABASE_URL": f"sqlite:///{tmp_path}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{tmp_path}/tracker.db",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from clinic.db import migrate

    migrate(env["CLINIC_DATABASE_URL"])
    return env


@pytest.fixture
def stack(model: str, stack_env: dict[str, str]) -> Iterator[Stack]:
    """An assistant that is not started yet (each test starts what it needs)."""
    running = Stack(model, free_port(), free_port(), env=stack_env, quiet=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def running_stack(model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A started assistant (Rasa + action server) shared by one test module."""
    var = tmp_path_factory.mktemp("stack")
    env = {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": f"sqlite:///{var}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{var}/tracker.db",
    }
    from clinic.db import migrate

    migrate(env["CLINIC_DATABASE_URL"])
    running = Stack(model, free_port(), free_port(), env=env, quiet=True)
    running.start()
    yield running
    running.stop()

"""Fixtures that run the real assistant (trained model, Rasa server, action server).

Every test in this folder is marked ``integration`` (slow: real servers), so ``pytest -m "not
integration"`` leaves them out; ``make test`` runs them all.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from clinic.launcher import Stack

if TYPE_CHECKING:
    from tests.clinic.staff.notifiers.servers import TwilioStub

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests of this folder ``integration`` (the hook sees every collected test)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


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


def sqlite_env(var: Path) -> dict[str, str]:
    """An assistant's variables for its own SQLite databases (clinic and tracker store) in ``var``."""
    return {
        "CLINIC_VAR_DIR": str(var),
        "CLINIC_DATABASE_URL": f"sqlite:///{var}/clinic.db",
        "TRACKER_STORE_URL": f"sqlite:///{var}/tracker.db",
    }


@contextmanager
def started_stack(model: str, env: dict[str, str], **options: Any) -> Iterator[Stack]:
    """The assistant on ``env`` (its clinic database migrated first), started, and stopped on leaving;
    ``options`` go to :class:`Stack` (``quiet``, ``log_dir``, ``staff_port``...)."""
    from clinic.db import migrate

    migrate(env["CLINIC_DATABASE_URL"])
    running = Stack(model, free_port(), free_port(), env=env, **options)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def wait_for(condition: Callable[[], Any], *, timeout: float) -> Any:
    """``condition()``'s first truthy value, asked every 0.2 s; after ``timeout`` s, its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh SQLite databases for one test's assistant."""
    env = sqlite_env(tmp_path)
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
    with started_stack(model, sqlite_env(tmp_path_factory.mktemp("stack")), quiet=True) as running:
        yield running


# ------------------------------------------------------------------ the SMS line: a stand-in for Twilio

PUBLIC_SMS_URL = "https://texts.clinic.example/webhooks/twilio/webhook"  # as configured behind a proxy
SMS_LINE = "+15550104201"


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioStub]:
    """A local Twilio Messages API (no network): what the assistant texts is read from it."""
    from tests.clinic.staff.notifiers.servers import TwilioStub

    stub = TwilioStub()
    stub.start()
    yield stub
    stub.stop()


def sms_env(var: Path, twilio: TwilioStub, **variables: str) -> dict[str, str]:
    """An assistant's variables for SQLite databases in ``var`` and the SMS line ``SMS_LINE`` on
    ``twilio``, signed for ``PUBLIC_SMS_URL``, with no staff notifier; ``variables`` are added
    (or replace these)."""
    from tests.clinic.staff.notifiers.servers import TWILIO_SID, TWILIO_TOKEN

    return {
        **sqlite_env(var),
        "STAFF_NOTIFIERS": "",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_SMS_NUMBER": SMS_LINE,
        "TWILIO_API_BASE": twilio.url,
        "TWILIO_WEBHOOK_URL": PUBLIC_SMS_URL,
        "SMS_RETRY_DELAYS": "0.2,0.2",
        **variables,
    }


# ------------------------------------------------------------------ scale-out: Redis

REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The Redis server for the scale-out tests (``CLINIC_TEST_REDIS_URL``, default the local one);
    skips when unreachable, fails under ``CI=true`` (like the PostgreSQL fixture)."""
    import redis

    from clinic.settings import redact_url
    from tests.conftest import running_in_ci

    url = os.environ.get("CLINIC_TEST_REDIS_URL") or REDIS_DEFAULT_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        where = redact_url(url)
        if running_in_ci():
            pytest.fail(f"Redis not reachable at {where} ({type(exc).__name__}); CI=true requires it "
                        "(set CLINIC_TEST_REDIS_URL to the CI Redis)", pytrace=False)
        pytest.skip(f"Redis not reachable at {where} ({type(exc).__name__}); "
                    "set CLINIC_TEST_REDIS_URL or run under CI=true")
    finally:
        client.close()
    return url


@pytest.fixture(scope="module")
def redis_key_prefix(redis_server_url: str) -> Iterator[str]:
    """A fresh ``REDIS_KEY_PREFIX`` (lock keys ``<prefix>:lock:*``, socket.io channel
    ``<prefix>:socketio``); its keys are deleted afterwards, no other key is touched."""
    import redis

    prefix = f"test{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_server_url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="module")
def postgres_schema_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema (dropped afterwards) as a URL whose connections use it
    (``?options=-csearch_path=<schema>``): for the clinic database and Rasa's tracker store alike."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from clinic.db import get_engine

    schema = f"scale_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url, future=True)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        yield url_text
    finally:
        get_engine(url_text).dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

"""Migration 0006: the escalations' language column, up and down, keeping the rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from clinic.db import get_engine
from clinic.settings import PROJECT_DIR
from clinic.staff.escalation import escalate
from tests.clinic.staff import stored_escalations


@pytest.fixture
def alembic(database_url: str) -> Iterator[Config]:
    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.attributes["database_url"] = database_url
    yield config


def _columns(database_url: str) -> set[str]:
    return {c["name"] for c in inspect(get_engine(database_url)).get_columns("escalations")}


def _insert_open_escalation(database_url: str, conversation_id: str) -> None:
    with get_engine(database_url).begin() as connection:
        connection.execute(text(
            "INSERT INTO escalations (conversation_id, channel, reason, urgency, status, created_at, updated_at) "
            "VALUES (:c, 'twilio', 'crisis', 'urgent', 'open', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            {"c": conversation_id})


def test_upgrading_adds_the_language_and_older_escalations_have_none(database_url: str, alembic: Config) -> None:
    command.downgrade(alembic, "0005")
    assert "language" not in _columns(database_url)
    _insert_open_escalation(database_url, "conv-old")

    command.upgrade(alembic, "head")

    assert "language" in _columns(database_url)
    [older] = stored_escalations(database_url=database_url)
    assert (older.conversation_id, older.language) == ("conv-old", None)
    escalate(conversation_id="conv-new", channel="twilio", reason="crisis", message_id="m1", text="quiero morir",
             language="es", database_url=database_url)
    assert {e.conversation_id: e.language for e in stored_escalations(database_url=database_url)} == {
        "conv-old": None, "conv-new": "es"}


def test_downgrading_removes_only_the_language(database_url: str, alembic: Config) -> None:
    escalate(conversation_id="conv-1", channel="twilio", reason="crisis", message_id="m1", text="help",
             language="es", database_url=database_url)
    columns = _columns(database_url)

    command.downgrade(alembic, "0005")

    assert _columns(database_url) == columns - {"language"}
    with get_engine(database_url).connect() as connection:
        assert connection.execute(text("SELECT conversation_id FROM escalations")).scalars().all() == ["conv-1"]
    with pytest.raises(IntegrityError):  # still one open escalation per conversation
        _insert_open_escalation(database_url, "conv-1")

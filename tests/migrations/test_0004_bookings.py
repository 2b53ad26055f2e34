"""Migration 0004: the bookings table and the new booking request columns, up and down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from clinic.db import Base, get_engine
from clinic.settings import PROJECT_DIR


@pytest.fixture
def alembic(database_url: str) -> Iterator[Config]:
    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.attributes["database_url"] = database_url
    yield config


def test_the_schema_matches_the_models(database_url: str) -> None:
    with get_engine(database_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_upgrading_keeps_earlier_booking_requests(database_url: str, alembic: Config) -> None:
    command.downgrade(alembic, "0003")
    engine = get_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO booking_requests (conversation_id, channel, full_name, phone, status, created_at) "
            "VALUES ('conv-1', 'rest', 'Ana', '+13125550123', 'requested', CURRENT_TIMESTAMP)"))

    command.upgrade(alembic, "head")

    with engine.connect() as connection:
        row = connection.execute(text("SELECT kind, webhook_attempts, code, full_name FROM booking_requests")).one()
    assert tuple(row) == ("book", 0, None, "Ana")


def test_downgrading_removes_only_what_0004_added(database_url: str, alembic: Config) -> None:
    command.downgrade(alembic, "0003")

    inspector = inspect(get_engine(database_url))
    assert "bookings" not in inspector.get_table_names()
    assert {c["name"] for c in inspector.get_columns("booking_requests")} == {
        "id", "conversation_id", "channel", "full_name", "phone", "preferred_time_text", "preferred_time", "status",
        "created_at"}
    command.upgrade(alembic, "head")
    assert "bookings" in inspect(get_engine(database_url)).get_table_names()

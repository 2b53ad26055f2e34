"""Migration 0005: the received SMS table (Twilio MessageSids taken once), up and down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from clinic.channels.sms import claim_message
from clinic.db import get_engine
from clinic.settings import PROJECT_DIR


@pytest.fixture
def alembic(database_url: str) -> Iterator[Config]:
    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.attributes["database_url"] = database_url
    yield config


def test_upgrading_adds_the_table_and_downgrading_removes_only_it(database_url: str, alembic: Config) -> None:
    command.downgrade(alembic, "0004")
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert "received_sms" not in tables and {"sms_contacts", "bookings"} <= tables

    command.upgrade(alembic, "0005")  # later revisions add tables of their own

    inspector = inspect(get_engine(database_url))
    assert inspector.get_pk_constraint("received_sms")["constrained_columns"] == ["message_sid"]
    assert {c["name"] for c in inspector.get_columns("received_sms")} == {"message_sid", "received_at"}
    assert set(inspector.get_table_names()) == tables | {"received_sms"}


def test_after_the_upgrade_a_message_sid_is_taken_once(database_url: str, alembic: Config) -> None:
    command.downgrade(alembic, "0004")
    command.upgrade(alembic, "head")

    assert claim_message("SM1", database_url) and not claim_message("SM1", database_url)

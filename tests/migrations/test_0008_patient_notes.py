"""Migration 0008: the patient_notes table, added and removed alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from clinic.db import get_engine

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def alembic(database_url: str) -> Iterator[Config]:
    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.attributes["database_url"] = database_url
    yield config


def test_upgrading_adds_the_table_and_downgrading_removes_only_it(database_url: str, alembic: Config) -> None:
    command.downgrade(alembic, "0007")
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert "patient_notes" not in tables

    command.upgrade(alembic, "0008")

    inspector = inspect(get_engine(database_url))
    assert set(inspector.get_table_names()) == tables | {"patient_notes"}
    assert {c["name"] for c in inspector.get_columns("patient_notes")} == {
        "id", "patient_key", "author_id", "escalation_id", "text", "created_at"}
    assert [i["column_names"] for i in inspector.get_indexes("patient_notes")] == [["patient_key"]]
    command.downgrade(alembic, "0007")
    assert set(inspect(get_engine(database_url)).get_table_names()) == tables

"""clinic.db: engines from the environment, transactions, migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from clinic.db import BookingRequest, get_engine, migrate, session_scope


def test_the_engine_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_DATABASE_URL", f"sqlite:///{tmp_path / 'first.db'}")
    first = get_engine()
    monkeypatch.setenv("CLINIC_DATABASE_URL", f"sqlite:///{tmp_path / 'second.db'}")
    second = get_engine()

    assert str(first.url).endswith("first.db") and str(second.url).endswith("second.db")
    assert get_engine() is second  # one engine per URL
    first.dispose()
    second.dispose()


def test_migrate_creates_the_tables_and_can_run_again(database_url: str) -> None:
    migrate(database_url)  # a second time: nothing to do

    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {"escalations", "escalation_messages", "booking_requests", "alembic_version"} <= tables


def test_a_failed_transaction_is_rolled_back(database_url: str) -> None:
    with pytest.raises(RuntimeError), session_scope(database_url) as session:
        session.add(BookingRequest(conversation_id="c", channel="rest", full_name="A B", phone="+13125550123"))
        session.flush()
        raise RuntimeError("boom")

    with session_scope(database_url) as session:
        assert session.execute(select(BookingRequest)).first() is None


def test_a_database_error_does_not_carry_patient_details(sqlite_url: str) -> None:
    with pytest.raises(SQLAlchemyError) as error, get_engine(sqlite_url).connect() as connection:
        connection.execute(text("INSERT INTO no_such_table VALUES (:t)"), {"t": "Jane Doe 312-555-0123"})
    assert "Jane Doe" not in str(error.value) and "555-0123" not in str(error.value)

"""addons.tracker_store: Rasa's SQL tracker store, faster, with the same rows and trackers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from addons.tracker_store import STORED, ClinicTrackerStore
from clinic.settings import PROJECT_DIR, tracker_store_sync


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_DIR / "domain.yml"))


@pytest.fixture
def store(database_url: str, domain: Domain, monkeypatch: pytest.MonkeyPatch) -> ClinicTrackerStore:
    monkeypatch.setenv("TRACKER_STORE_URL", database_url)
    return ClinicTrackerStore(domain=domain)


def rasas_store(url: str, domain: Domain) -> SQLTrackerStore:
    parsed = make_url(url)
    return SQLTrackerStore(domain=domain, dialect=parsed.drivername, host=parsed.host, port=parsed.port,
                           db=parsed.database, username=parsed.username, password=parsed.password,
                           query=dict(parsed.query) or None)


def turn(tracker: DialogueStateTracker, text: str, domain: Domain) -> None:
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 0.9}, [], {"text": text}), domain)
    tracker.update(ActionExecuted("utter_greet"), domain)
    tracker.update(BotUttered(f"answer to {text}"), domain)
    tracker.update(ActionExecuted("action_listen"), domain)


def new_session(tracker: DialogueStateTracker, domain: Domain) -> None:
    time.sleep(0.01)  # a later timestamp, as a real new session has
    tracker.update(ActionExecuted("action_session_start"), domain)
    tracker.update(SessionStarted(), domain)
    tracker.update(SlotSet("language", "en"), domain)
    tracker.update(ActionExecuted("action_listen"), domain)


def stored_rows(url: str, sender: str) -> list[tuple[str, str | None]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(
                sa.text("SELECT type_name, action_name FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender})]
    finally:
        engine.dispose()


def dumped(tracker: DialogueStateTracker | None) -> list[dict[str, Any]]:
    assert tracker is not None
    return [e.as_dict() for e in tracker.events]


def test_a_conversation_over_two_sessions_is_stored_once_and_read_back_as_rasa_reads_it(
        store: ClinicTrackerStore, database_url: str, domain: Domain) -> None:
    async def scenario() -> None:
        tracker = await store.get_or_create_tracker("patient-1")
        for text in ("hi", "cost?"):
            tracker = await store.retrieve("patient-1") or tracker
            turn(tracker, text, domain)
            await store.save(tracker)
            await store.save(tracker)  # saved twice: nothing stored twice
        tracker = await store.retrieve("patient-1")
        new_session(tracker, domain)
        turn(tracker, "back again", domain)
        await store.save(tracker)
        turn(tracker, "and again", domain)  # the same object, saved again after a new session
        await store.save(tracker)

        rasa = rasas_store(database_url, domain)
        ours_latest = await store.retrieve("patient-1")
        assert dumped(ours_latest) == dumped(await rasa.retrieve("patient-1"))
        assert dumped(await store.retrieve_full_tracker("patient-1")) == dumped(
            await rasa.retrieve_full_tracker("patient-1"))
        assert [e.as_dict() for e in tracker.events] == dumped(await store.retrieve_full_tracker("patient-1"))
        texts = [e.text for e in ours_latest.events if isinstance(e, UserUttered)]
        assert texts == ["back again", "and again"]  # the latest session only
        assert getattr(ours_latest, STORED) == len(ours_latest.events)
        rasa.engine.dispose()

    asyncio.run(scenario())
    rows = stored_rows(database_url, "patient-1")
    assert len(rows) == 1 + 4 * 4 + 4  # first listen, four turns, the new session's four events
    assert rows.count(("session_started", None)) == 1


def test_a_tracker_not_read_here_falls_back_to_counting(store: ClinicTrackerStore, database_url: str,
                                                        domain: Domain) -> None:
    async def scenario() -> None:
        tracker = await store.get_or_create_tracker("patient-2")
        turn(tracker, "hi", domain)
        await store.save(tracker)
        rebuilt = DialogueStateTracker.from_events("patient-2", list(tracker.events), domain.slots)
        assert not hasattr(rebuilt, STORED)
        turn(rebuilt, "more", domain)
        await store.save(rebuilt)

    asyncio.run(scenario())
    assert len(stored_rows(database_url, "patient-2")) == 1 + 4 + 4


def test_rasas_store_and_this_one_read_each_others_conversations(store: ClinicTrackerStore, database_url: str,
                                                                 domain: Domain) -> None:
    async def scenario() -> None:
        rasa = rasas_store(database_url, domain)
        tracker = await rasa.get_or_create_tracker("patient-3")
        turn(tracker, "written by rasa", domain)
        await rasa.save(tracker)
        ours = await store.retrieve("patient-3")
        assert dumped(ours) == dumped(tracker)
        turn(ours, "written here", domain)
        await store.save(ours)
        assert dumped(await rasa.retrieve("patient-3")) == dumped(ours)
        assert await store.retrieve("nobody") is None
        rasa.engine.dispose()

    asyncio.run(scenario())


def test_sqlite_runs_in_wal_mode_with_the_chosen_sync(tmp_path: Any, domain: Domain,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_STORE_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    monkeypatch.delenv("TRACKER_STORE_SYNC", raising=False)
    assert tracker_store_sync() == "NORMAL"
    with ClinicTrackerStore(domain=domain).engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    monkeypatch.setenv("TRACKER_STORE_SYNC", "full")
    with ClinicTrackerStore(domain=domain).engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    monkeypatch.setenv("TRACKER_STORE_SYNC", "sometimes")
    with pytest.raises(ValueError, match="TRACKER_STORE_SYNC"):
        ClinicTrackerStore(domain=domain)

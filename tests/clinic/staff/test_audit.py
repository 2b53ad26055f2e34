"""clinic.staff.audit: recording events (own transaction or the caller's) and reading them back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from clinic.db import session_scope
from clinic.staff import audit

ANA = SimpleNamespace(id=7, username="ana")
ESCALATION = SimpleNamespace(id=3, conversation_id="conv-3")


def test_an_event_records_who_what_and_which_conversation(database_url: str) -> None:
    audit.record(database_url, ANA, "claim", ESCALATION, "via console")

    [event] = audit.list_events(database_url)
    assert (event.user_id, event.username, event.action) == (7, "ana", "claim")
    assert (event.escalation_id, event.conversation_id, event.detail) == (3, "conv-3", "via console")
    assert event.at.tzinfo is not None


def test_an_event_joins_the_callers_transaction(sqlite_url: str) -> None:
    with pytest.raises(RuntimeError), session_scope(sqlite_url) as session:
        audit.record(session, ANA, "view", ESCALATION)
        raise RuntimeError("the change failed")

    assert audit.list_events(sqlite_url) == []


def test_a_failed_sign_in_without_an_account(sqlite_url: str) -> None:
    audit.record(sqlite_url, None, "login_failed", detail="unknown_user; from 10.0.0.1")

    [event] = audit.list_events(sqlite_url)
    assert (event.user_id, event.username, event.escalation_id) == (None, None, None)


def test_unknown_actions_are_refused(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(sqlite_url, ANA, "delete_everything")


def test_long_details_are_cut(sqlite_url: str) -> None:
    audit.record(sqlite_url, ANA, "reply", ESCALATION, "x" * 1000)

    assert len(audit.list_events(sqlite_url)[0].detail) == audit.DETAIL_MAX


def test_events_are_listed_newest_first_with_filters_and_paging(database_url: str) -> None:
    bob = SimpleNamespace(id=8, username="bob")
    other = SimpleNamespace(id=4, conversation_id="conv-4")
    audit.record(database_url, ANA, "view", ESCALATION)
    audit.record(database_url, bob, "claim", other)
    audit.record(database_url, ANA, "note", other)
    audit.record(database_url, ANA, "resolve", ESCALATION)

    assert [e.action for e in audit.list_events(database_url)] == ["resolve", "note", "claim", "view"]
    assert [e.action for e in audit.list_events(database_url, escalation_id=4)] == ["note", "claim"]
    assert [e.action for e in audit.list_events(database_url, username="BOB")] == ["claim"]
    assert [e.action for e in audit.list_events(database_url, action="view")] == ["view"]
    first_page = audit.list_events(database_url, limit=2)
    second_page = audit.list_events(database_url, limit=2, before_id=first_page[-1].id)
    assert [e.action for e in first_page + second_page] == ["resolve", "note", "claim", "view"]

"""clinic.staff.saved_replies: templates administrators keep, filled in for each conversation.

Every database test runs on SQLite and, when reachable, PostgreSQL (``database_url``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SlotSet
from sqlalchemy import insert

from clinic.booking.scheduling.records import free_code
from clinic.clock import utcnow
from clinic.db import Booking, get_engine, session_scope
from clinic.profile import ClinicProfile, load_profile
from clinic.staff import audit, saved_replies
from clinic.staff.accounts import StaffMember, create_user
from clinic.staff.saved_replies import DuplicateName, InvalidReply, UnknownReply

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
EVENTS = SQLTrackerStore.SQLEvent.__table__


@pytest.fixture
def ada(database_url: str) -> StaffMember:
    return create_user("ada", "correct horse battery staple", display_name="Ada Admin", is_admin=True,
                       database_url=database_url, hasher=CHEAP)


@pytest.fixture
def sam(database_url: str) -> StaffMember:
    return create_user("sam", "correct horse battery staple", display_name="Sam Staff", database_url=database_url,
                       hasher=CHEAP)


@pytest.fixture
def profile(make_profile: Callable[..., ClinicProfile]) -> ClinicProfile:
    return make_profile(name="Lakeside Ketamine Clinic", phone="+1 312 555 0100")


@pytest.fixture
def tracker_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    EVENTS.metadata.create_all(get_engine(url), tables=[EVENTS])
    return url


def book(database_url: str, conversation_id: str, name: str) -> None:
    with session_scope(database_url) as session:
        start = utcnow() + timedelta(days=2)
        session.add(Booking(code=free_code(session), conversation_id=conversation_id, channel="socketio",
                            backend="builtin", full_name=name, phone="+13125550123", starts_at=start,
                            ends_at=start + timedelta(minutes=30), chair=1, status="booked"))


# ------------------------------------------------------------------ the defaults


def test_the_first_migration_seeds_the_defaults_worded_from_clinic_yml(database_url: str) -> None:
    replies = {item.name: item for item in saved_replies.list_replies(database_url=database_url)}

    assert set(replies) == {"Call-back offer", "Bring your medication list", "Provider will discuss at your consult",
                            "After-hours note"}
    after_hours = replies["After-hours note"].body
    assert load_profile().response_time in after_hours and "{hours}" in after_hours
    assert load_profile().booking.preparation in replies["Bring your medication list"].body
    assert all("{patient_first_name}" in item.body for item in replies.values())
    assert {item.created_by for item in replies.values()} == {"setup"}


def test_without_a_readable_profile_the_defaults_use_their_own_wording() -> None:
    rows = saved_replies.default_rows(None)

    assert "as soon as we can" in next(row["body"] for row in rows if row["name"] == "After-hours note")


# ------------------------------------------------------------------ filling in


@pytest.mark.parametrize(
    ("full_name", "first"),
    [("Ana María López", "Ana"), ("ana lópez", "Ana"), ("  O'Neil  Smith", "O'Neil"), ("Dr. Who", "Dr"),
     ("", None), ("123 456", None), (None, None)],
)
def test_the_first_name_is_the_first_word_when_it_looks_like_a_name(full_name: str | None, first: str | None) -> None:
    assert saved_replies.first_name_of(full_name) == first


def test_placeholders_are_filled_from_the_profile_and_the_booking(database_url: str, profile: ClinicProfile,
                                                                  tracker_url: str) -> None:
    book(database_url, "conv-1", "Ana María López")

    [callback] = [r for r in saved_replies.replies_for("conv-1", "socketio", profile, database_url=database_url,
                                                       tracker_url=tracker_url) if r.name == "Call-back offer"]

    assert callback.text.startswith("Hi Ana, this is the team at Lakeside Ketamine Clinic.")
    assert "(312) 555-0100 (Monday to Thursday 8 AM to 6 PM" in callback.text
    assert "{" not in callback.text


def test_the_name_slot_is_used_when_there_is_no_booking(database_url: str, profile: ClinicProfile,
                                                        tracker_url: str) -> None:
    slot = SlotSet("patient_name", "beatriz ruiz")
    with get_engine(tracker_url).begin() as connection:
        connection.execute(insert(EVENTS), [{"sender_id": "conv-2", "type_name": "slot", "timestamp": 1.0,
                                             "data": json.dumps(slot.as_dict())}])

    ready = saved_replies.replies_for("conv-2", "socketio", profile, database_url=database_url, tracker_url=tracker_url)

    assert all("Beatriz" in item.text for item in ready)


def test_an_unknown_first_name_reads_naturally(database_url: str, profile: ClinicProfile, tracker_url: str) -> None:
    ready = saved_replies.replies_for("stranger", "twilio", profile, database_url=database_url, tracker_url=tracker_url)

    assert ready and all("{patient_first_name}" not in item.text for item in ready)
    assert any(item.text.startswith("Hi there, ") for item in ready)


def test_only_replies_for_the_conversations_channel_are_offered(database_url: str, ada: StaffMember,
                                                                profile: ClinicProfile, tracker_url: str) -> None:
    saved_replies.create_reply(ada, "Text STOP", "Reply STOP to stop texts from {clinic_name}.", "sms",
                               database_url=database_url)
    saved_replies.create_reply(ada, "Chat link", "You can also chat with us on our website.", "web",
                               database_url=database_url)

    def names(channel: str) -> set[str]:
        return {r.name for r in saved_replies.replies_for("c", channel, profile, database_url=database_url,
                                                          tracker_url=tracker_url)}

    assert "Text STOP" in names("twilio") and "Chat link" not in names("twilio")
    assert "Chat link" in names("socketio") and "Text STOP" not in names("socketio")
    assert "Call-back offer" in names("twilio") and "Call-back offer" in names("socketio")


# ------------------------------------------------------------------ administrators' changes


def test_an_admin_creates_edits_retires_and_restores_with_an_audit_trail(database_url: str, ada: StaffMember) -> None:
    made = saved_replies.create_reply(ada, " Parking ", "Hi {patient_first_name}, park behind the building.", "",
                                      database_url=database_url)
    saved_replies.update_reply(made.id, ada, "Parking", "Park behind {clinic_name}.", "web", via="api",
                               database_url=database_url)
    saved_replies.set_retired(made.id, ada, True, database_url=database_url)
    assert "Parking" not in {r.name for r in saved_replies.list_replies(database_url=database_url)}
    restored = saved_replies.set_retired(made.id, ada, False, database_url=database_url)

    assert (restored.name, restored.body, restored.channel, restored.retired) == (
        "Parking", "Park behind {clinic_name}.", "web", False)
    events = [(e.action, e.username, e.detail) for e in reversed(audit.list_events(database_url))]
    assert events == [
        ("saved_reply_create", "ada", f"saved reply {made.id}; via console"),
        ("saved_reply_edit", "ada", f"saved reply {made.id}; via api"),
        ("saved_reply_retire", "ada", f"saved reply {made.id}; via console"),
        ("saved_reply_restore", "ada", f"saved reply {made.id}; via console"),
    ]


def test_staff_who_are_not_admins_cannot_change_saved_replies(database_url: str, sam: StaffMember) -> None:
    first = saved_replies.list_replies(database_url=database_url)[0]

    with pytest.raises(PermissionError):
        saved_replies.create_reply(sam, "Mine", "text", database_url=database_url)
    with pytest.raises(PermissionError):
        saved_replies.update_reply(first.id, sam, "Mine", "text", database_url=database_url)
    with pytest.raises(PermissionError):
        saved_replies.set_retired(first.id, sam, True, database_url=database_url)
    assert saved_replies.get_reply(first.id, database_url=database_url) == first
    assert audit.list_events(database_url) == []


@pytest.mark.parametrize(
    ("name", "body", "channel", "message"),
    [
        ("", "text", None, "Give the saved reply a name"),
        ("x" * 81, "text", None, "at most 80"),
        ("Hi", "   ", None, "empty"),
        ("Hi", "x" * 1501, None, "at most 1,500"),
        ("Hi", "Hi {first_name}, see you at {clinic}", None, "Unknown placeholder {clinic}, {first_name}"),
        ("Hi", "text", "email", "web, sms"),
        ("Hi", 42, None, "must be a string"),
    ],
)
def test_a_bad_saved_reply_is_refused_with_a_reason(database_url: str, ada: StaffMember, name: str, body: object,
                                                    channel: str | None, message: str) -> None:
    with pytest.raises(InvalidReply, match=message.replace("{", r"\{").replace("}", r"\}")):
        saved_replies.create_reply(ada, name, body, channel, database_url=database_url)


def test_two_replies_in_use_cannot_share_a_name(database_url: str, ada: StaffMember) -> None:
    with pytest.raises(DuplicateName):
        saved_replies.create_reply(ada, "call-back OFFER", "text", database_url=database_url)
    callback = next(r for r in saved_replies.list_replies(database_url=database_url) if r.name == "Call-back offer")
    saved_replies.set_retired(callback.id, ada, True, database_url=database_url)
    saved_replies.create_reply(ada, "Call-back offer", "A new wording.", database_url=database_url)

    with pytest.raises(DuplicateName):
        saved_replies.set_retired(callback.id, ada, False, database_url=database_url)


def test_an_unknown_saved_reply(database_url: str, ada: StaffMember) -> None:
    with pytest.raises(UnknownReply):
        saved_replies.update_reply(9999, ada, "Name", "text", database_url=database_url)
    with pytest.raises(UnknownReply):
        saved_replies.get_reply(2**40, database_url=database_url)

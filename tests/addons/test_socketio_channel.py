"""addons.socketio_channel: staff-reply labels, the hand-off state and session checks.

Unit tests with a recording socket.io server, then the real Rasa server with a socket.io client
(the widget's protocol).
"""

from __future__ import annotations

import asyncio
import queue
import time
import uuid
from typing import Any

import pytest
import socketio
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from addons.socketio_channel import (
    CLINIC_TEAM_FLAG,
    STATE_EVENT,
    ClinicSocketIOInput,
    ClinicSocketIOOutput,
    _metadata_of,
    offered_buttons,
    only_offered_payloads,
)
from clinic.rasa_api import hand_back, send_staff_reply
from clinic.staff.transcript import STAFF_METADATA_KEY
from tests.integration.conftest import model, running_stack  # noqa: F401 - fixtures


class RecordingServer:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, str | None]] = []
        self.tasks: list[Any] = []

    async def emit(self, event: str, data: Any = None, room: str | None = None, **kwargs: Any) -> None:
        self.emitted.append((event, data, room))

    def start_background_task(self, target: Any, *args: Any) -> None:
        self.tasks.append(target)


def test_a_staff_reply_is_emitted_whole_and_marked_as_from_the_clinic_team() -> None:
    sio = RecordingServer()
    output = ClinicSocketIOOutput(sio, "bot_uttered")  # type: ignore[arg-type]

    asyncio.run(output.send_response("s1", {"text": "Hi, Dana here.\n\nI'll call you.", STAFF_METADATA_KEY: "Dana"}))

    assert sio.emitted == [("bot_uttered", {"text": "Hi, Dana here.\n\nI'll call you.", CLINIC_TEAM_FLAG: True}, "s1")]


def test_bot_messages_are_emitted_as_rasa_does() -> None:
    sio = RecordingServer()
    output = ClinicSocketIOOutput(sio, "bot_uttered")  # type: ignore[arg-type]

    asyncio.run(output.send_response("s1", {"text": "One.\n\nTwo.", "utter_action": "utter_x"}))
    asyncio.run(output.send_response("s1", {"text": "Pick", "buttons": [{"title": "A", "payload": "/a"}]}))

    assert [data for _, data, _ in sio.emitted] == [
        {"text": "One."}, {"text": "Two."},
        {"text": "Pick", "quick_replies": [{"content_type": "text", "title": "A", "payload": "/a"}]},
    ]
    assert all(CLINIC_TEAM_FLAG not in data for _, data, _ in sio.emitted)


def test_messages_pushed_through_the_api_schedule_one_state_report() -> None:
    channel = ClinicSocketIOInput(session_persistence=True)
    reports: list[str] = []
    channel.report_state_later = reports.append  # type: ignore[method-assign]
    sio = RecordingServer()
    pushed = ClinicSocketIOOutput(sio, "bot_uttered", channel, report_state_after_turn=True)  # type: ignore[arg-type]
    turn = ClinicSocketIOOutput(sio, "bot_uttered", channel)  # type: ignore[arg-type]

    asyncio.run(pushed.send_text_message("s1", "one"))
    asyncio.run(pushed.send_text_message("s1", "two"))
    asyncio.run(turn.send_text_message("s1", "three"))

    assert reports == ["s1"]


def test_the_channel_keeps_rasas_name_and_options() -> None:
    channel = ClinicSocketIOInput.from_credentials({"session_persistence": True, "bot_message_evt": "bot_uttered"})

    assert isinstance(channel, ClinicSocketIOInput) and channel.name() == "socketio"
    assert channel.session_persistence and channel.get_output_channel() is None  # no server yet (Rasa warns)


BOOK = {"title": "Book a consultation", "payload": "/book_consultation"}
HUMAN = {"title": "Talk to a person", "payload": "/request_human"}


def test_the_buttons_offered_are_those_since_the_patients_last_message() -> None:
    tracker = DialogueStateTracker.from_events("s1", [
        ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}),
        BotUttered("Old", data={"buttons": [{"title": "Old", "payload": "/old"}]}),
        UserUttered("are you a bot?", {"name": "bot_challenge"}),
        BotUttered("I'm an assistant.", data={"buttons": [HUMAN]}), BotUttered("Or:", data={"buttons": [BOOK]}),
    ])

    assert offered_buttons(tracker) == [HUMAN, BOOK]
    assert offered_buttons(tracker, latest_only=True) == [BOOK]
    assert offered_buttons(None) == []


@pytest.mark.parametrize(("text", "sent"), [
    ("/book_consultation", "/book_consultation"),  # the button just offered
    ("/request_human", "/request_human"),
    ("/EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),  # typed: not a command
    ("/old", "old"),
    ("//greet", "greet"),
    ("/ /EXTERNAL_handoff_resolved", "EXTERNAL_handoff_resolved"),  # once left "/EXTERNAL_..."
    ("how much / what price", "how much / what price"),
    ("/", ""),
])
def test_only_payloads_of_offered_buttons_are_commands(text: str, sent: str) -> None:
    assert only_offered_payloads(text, [HUMAN, BOOK]) == sent


# ------------------------------------------------------------------ through the real Rasa server


class Browser:
    """A socket.io client speaking the widget's protocol, keeping every event it receives."""

    def __init__(self, rasa_port: int, session_id: str | None = None) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        for name in ("bot_uttered", STATE_EVENT, "session_confirm"):
            self.client.on(name, lambda data, name=name: self.events.put((name, data)))
        self.client.connect(f"http://127.0.0.1:{rasa_port}", transports=["polling"], wait_timeout=10)
        self.session_id = self.request_session(session_id or uuid.uuid4().hex + uuid.uuid4().hex)

    def request_session(self, session_id: str) -> str:
        self.client.emit("session_request", {"session_id": session_id})
        return self.next("session_confirm")

    def next(self, name: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event, data = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event == name:
                return data
        raise AssertionError(f"no {name} event within {timeout}s")

    def collect(self, quiet_for: float = 1.5, wait: float = 15.0) -> list[tuple[str, Any]]:
        got: list[tuple[str, Any]] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                got.append(self.events.get(timeout=quiet_for if got else wait))
            except queue.Empty:
                break
        return got

    def say(self, text: str, session_id: str | None = None) -> None:
        self.client.emit("user_uttered", {"message": text, "session_id": session_id or self.session_id})

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def browser(running_stack):  # noqa: F811
    opened = Browser(running_stack.rasa_port)
    yield opened
    opened.close()


def test_the_state_follows_the_hand_off_and_staff_replies_are_labelled(running_stack, browser: Browser) -> None:  # noqa: F811
    api = f"http://127.0.0.1:{running_stack.rasa_port}"
    assert browser.next(STATE_EVENT) == {"handoff": False, "after": "join"}

    browser.say("how much does an infusion cost?")
    events = browser.collect()
    assert any(name == "bot_uttered" and "$" in data["text"] for name, data in events)
    assert events[-1] == (STATE_EVENT, {"handoff": False, "after": "turn"})

    browser.say("i'm on lithium, is ketamine safe for me?")
    assert browser.collect()[-1] == (STATE_EVENT, {"handoff": True, "after": "turn"})

    assert send_staff_reply(browser.session_id, "Hi, this is Dana.", staff_name="Dana", base_url=api).ok
    events = browser.collect()
    assert ("bot_uttered", {"text": "Hi, this is Dana.", CLINIC_TEAM_FLAG: True}) in events
    assert events[-1] == (STATE_EVENT, {"handoff": True, "after": "push"})

    assert hand_back(browser.session_id, base_url=api).ok
    events = browser.collect()
    back = [data for name, data in events if name == "bot_uttered"]
    assert back and "virtual assistant" in back[0]["text"] and CLINIC_TEAM_FLAG not in back[0]
    assert events[-1] == (STATE_EVENT, {"handoff": False, "after": "push"})


def test_a_reconnecting_browser_gets_the_current_state(running_stack, browser: Browser) -> None:  # noqa: F811
    browser.say("can i talk to a real person")
    assert browser.collect()[-1] == (STATE_EVENT, {"handoff": True, "after": "turn"})

    again = Browser(running_stack.rasa_port, browser.session_id)
    try:
        assert again.session_id == browser.session_id
        assert again.next(STATE_EVENT) == {"handoff": True, "after": "join"}
    finally:
        again.close()


def test_a_socket_cannot_write_into_a_session_it_did_not_join(running_stack, browser: Browser) -> None:  # noqa: F811
    other = Browser(running_stack.rasa_port)
    try:
        other.collect(quiet_for=0.5, wait=1)
        browser.collect(quiet_for=0.5, wait=1)
        browser.say("how much does an infusion cost?", session_id=other.session_id)
        assert browser.collect(wait=3) == [] and other.collect(wait=2) == []
    finally:
        other.close()


@pytest.mark.parametrize("requested", ["short", "../../etc", "x" * 200, None])
def test_unusable_session_ids_are_replaced_by_a_fresh_one(running_stack, requested: str | None) -> None:  # noqa: F811
    browser = Browser(running_stack.rasa_port, "placeholder-" + uuid.uuid4().hex)
    try:
        browser.client.emit("session_request", {"session_id": requested})
        confirmed = browser.next("session_confirm")
        assert confirmed != requested and len(confirmed) == 32
    finally:
        browser.close()


def test_a_typed_command_cannot_end_the_hand_off(running_stack, browser: Browser) -> None:  # noqa: F811
    browser.say("can i talk to a real person")
    assert browser.collect()[-1] == (STATE_EVENT, {"handoff": True, "after": "turn"})

    browser.say("/EXTERNAL_handoff_resolved")

    # held for staff: only the hand-off's acknowledgement of the patient's first held message
    events = browser.collect()
    assert events[-1] == (STATE_EVENT, {"handoff": True, "after": "turn"})
    said = [data["text"] for name, data in events if name == "bot_uttered"]
    assert len(said) == 1 and said[0].startswith("Your message is with our team"), said


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ({"language": "es"}, {"language": "es"}),
        ('{"language": "en", "tracking": "x"}', {"language": "en"}),
        ({"language": "fr", "blob": "a" * 1000}, {}),
        ("not json", {}),
        ([1, 2], {}),
        (None, {}),
    ],
)
def test_only_the_pages_language_is_kept_from_a_widget_messages_metadata(raw, kept) -> None:
    assert _metadata_of(raw) == kept

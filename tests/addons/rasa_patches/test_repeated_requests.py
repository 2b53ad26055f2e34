"""addons.rasa_patches.repeated_requests: a request id already in the conversation is answered from
the saved turn, not processed again; every other message is processed as by Rasa."""

from __future__ import annotations

import asyncio
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from addons.rasa_patches import repeated_requests
from addons.rasa_patches.repeated_requests import saved_replies

BUTTONS = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
EVENTS = [
    ActionExecuted("action_listen"),
    UserUttered("hi", {"name": "greet"}, message_id="request-a"),
    BotUttered("Hello!"),
    ActionExecuted("action_listen"),
    UserUttered("how much is it", {"name": "faq"}, message_id="request-b"),
    BotUttered("An infusion is $450."),
    SlotSet("topic", "cost"),
    BotUttered("Would you like to book?", data={"buttons": BUTTONS}),
    ActionExecuted("action_listen"),
    UserUttered("thanks", {"name": "thanks"}, message_id="request-c"),
    ActionExecuted("action_listen"),
]


def test_the_saved_replies_are_the_bot_messages_of_that_turn_only() -> None:
    assert [r["text"] for r in saved_replies(EVENTS, "request-b") or []] == [
        "An infusion is $450.", "Would you like to book?"]
    assert (saved_replies(EVENTS, "request-b") or [])[1]["buttons"] == BUTTONS
    assert [r["text"] for r in saved_replies(EVENTS, "request-a") or []] == ["Hello!"]
    assert saved_replies(EVENTS, "request-c") == []  # held for staff: the turn had no reply
    assert saved_replies(EVENTS, "request-z") is None
    assert saved_replies([], "request-a") is None


class Processor:
    """What the patch uses of Rasa's processor: its tracker store; Rasa's own method is recorded."""

    def __init__(self, events: list[Any]) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.processed: list[str] = []
        asyncio.run(self.tracker_store.save(DialogueStateTracker.from_events("patient-1", events)))


async def _rasa(self: Processor, message: UserMessage) -> list[dict[str, Any]]:
    self.processed.append(message.text or "")
    await message.output_channel.send_text_message(message.sender_id, "fresh reply")
    return message.output_channel.messages  # type: ignore[attr-defined,no-any-return]


def _handle(processor: Processor, message_id: str | None, sender: str = "patient-1") -> Any:
    original = repeated_requests.HANDLE_MESSAGE.original
    repeated_requests.HANDLE_MESSAGE.original = _rasa
    try:
        message = UserMessage("how much is it", CollectingOutputChannel(), sender, message_id=message_id)
        return asyncio.run(repeated_requests._handle_message(processor, message))  # type: ignore[arg-type]
    finally:
        repeated_requests.HANDLE_MESSAGE.original = original


def test_a_request_already_in_the_conversation_gets_its_saved_replies_and_is_not_processed() -> None:
    processor = Processor(EVENTS)

    replies = _handle(processor, "request-b")

    assert processor.processed == []
    assert [r["text"] for r in replies] == ["An infusion is $450.", "Would you like to book?"]
    assert all(r["recipient_id"] == "patient-1" for r in replies)
    assert replies[1]["buttons"] == BUTTONS


def test_new_requests_rasas_own_ids_and_new_conversations_are_processed() -> None:
    processor = Processor(EVENTS)

    for message_id, sender in [("request-new", "patient-1"), (None, "patient-1"), ("b", "patient-1"),
                               ("request-b", "patient-2")]:
        assert [r["text"] for r in _handle(processor, message_id, sender)] == ["fresh reply"]

    assert processor.processed == ["how much is it"] * 4


def test_the_patch_wraps_rasas_handle_message_while_installed() -> None:
    before = MessageProcessor.handle_message
    repeated_requests.PATCH.install()
    try:
        assert MessageProcessor.handle_message is repeated_requests._handle_message
        assert repeated_requests.HANDLE_MESSAGE.original is before
    finally:
        repeated_requests.PATCH.uninstall()
    assert MessageProcessor.handle_message is before

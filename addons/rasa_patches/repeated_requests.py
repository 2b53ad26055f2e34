"""Wraps ``MessageProcessor.handle_message``: a request delivered twice is processed once.

Why: nginx passes a REST request on to another Rasa instance when the first fails before it
answers (``proxy_next_upstream ... non_idempotent``), so that no patient message is lost when an
instance dies. But an instance can die after it saved the turn and before its answer left: the
second instance would then process the same message again, and the conversation would hold it
twice (twice the replies, twice any booking or escalation it led to). nginx gives each client
request one id (``$request_id``, sent as ``X-Request-ID``) that a retry keeps; the REST channel
makes it the message's id with :data:`REQUEST_ID_PREFIX`. Here, under the conversation's lock
(taken by Rasa's ``Agent.handle_message`` before this runs, so a first delivery still being
processed by a live instance is saved before this looks), a message whose id is already in the
conversation is not processed again: its saved replies are sent instead, as the first delivery
would have answered.

Only ids with the prefix are looked up (one tracker read): Rasa's own ids are new for every
message. Server only (:class:`~addons.rasa_patches.patch.Patch` ``server_only``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import BotUttered, Event, UserUttered

from addons.rasa_patches.patch import Patch, Replacement
from clinic.channels import REQUEST_ID_PREFIX

logger = logging.getLogger(__name__)


def saved_replies(events: Iterable[Event], message_id: str) -> list[dict[str, Any]] | None:
    """The replies saved for the user message ``message_id``, in order (``[]`` when it had none),
    or None when the conversation does not hold that message."""
    replies: list[dict[str, Any]] | None = None
    for event in events:
        if isinstance(event, UserUttered):
            if replies is not None:
                break  # the next message: its turn is over
            if event.message_id == message_id:
                replies = []
        elif replies is not None and isinstance(event, BotUttered):
            replies.append(event.message())
    return replies


async def _handle_message(self: MessageProcessor, message: Any) -> Any:
    message_id = getattr(message, "message_id", None)
    if not (isinstance(message_id, str) and message_id.startswith(REQUEST_ID_PREFIX)):
        return await HANDLE_MESSAGE.original(self, message)
    tracker = await self.tracker_store.retrieve(message.sender_id)
    replies = saved_replies(tracker.events, message_id) if tracker is not None else None
    if replies is None:
        return await HANDLE_MESSAGE.original(self, message)
    logger.info("a repeated delivery of a processed message was answered from its saved replies")
    output = message.output_channel
    for reply in replies:
        await output.send_response(message.sender_id, dict(reply))
    return getattr(output, "messages", None)


HANDLE_MESSAGE = Replacement(MessageProcessor, "handle_message", _handle_message)
PATCH = Patch("repeated requests", [HANDLE_MESSAGE], server_only=True)

"""Replaces ``DialogueStateTracker.copy``: a copy made from the tracker's state, not a replay.

Why: the message processor copies the tracker before every action it runs (``action_listen``
included), and Rasa's copy builds an empty tracker and replays every event of the conversation
into it, so a turn late in a booking replayed the conversation several times. A tracker's
state is exactly what replaying its events gives (Rasa's own rule: "MUST be re-creatable by
processing all the events"), so here the copy takes that state directly: the same events, copies
of the slots, the loop and the latest action, the same latest messages, and no ``model_id`` /
``assistant_id`` / ``sender_source`` (a replayed copy has none). Trackers that are not plain
``DialogueStateTracker`` objects, that cap their event history or that carry attributes this copy
does not know take Rasa's replay.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import deque
from typing import Any

from rasa.shared.constants import DEFAULT_SENDER_ID
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from addons.rasa_patches.dialogue_states import STATES_MEMO
from addons.rasa_patches.patch import Patch, Replacement
from addons.tracker_store import STORED

# Everything a DialogueStateTracker holds (Rasa 3.6 ``__init__``), and what this project keeps on
# one (the states memo, the tracker store's count of stored events): not copied, as replay.
_TRACKER_ATTRIBUTES = frozenset({
    "_max_event_history", "events", "sender_id", "slots", "sender_source", "is_rule_tracker", "_paused",
    "followup_action", "latest_action", "latest_message", "latest_bot_utterance", "active_loop", "model_id",
    "assistant_id", STATES_MEMO, STORED,
})


def _copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
    state = self.__dict__
    if (type(self) is not DialogueStateTracker or self._max_event_history is not None
            or type(self.slots) is not dict or not _TRACKER_ATTRIBUTES.issuperset(state)):
        return COPY.original(self)
    events = self.events
    new = DialogueStateTracker.__new__(DialogueStateTracker)
    new.__dict__.update(
        _max_event_history=None,
        events=deque(events),
        sender_id=self.sender_id or DEFAULT_SENDER_ID,  # as init_copy
        slots={name: copy.copy(slot) for name, slot in self.slots.items()},
        sender_source=None,
        is_rule_tracker=self.is_rule_tracker,
        _paused=self._paused,
        followup_action=self.followup_action,
        latest_action=None if self.latest_action is None else dict(self.latest_action),
        latest_message=_event_or_own_copy(self.latest_message, events, UserUttered),
        latest_bot_utterance=_event_or_own_copy(self.latest_bot_utterance, events, BotUttered),
        active_loop=None if self.active_loop is None else dataclasses.replace(self.active_loop),
        model_id=None,
        assistant_id=None,
    )
    return new


def _event_or_own_copy(latest: Any, events: deque, kind: type) -> Any:
    """A replayed copy points at the same event when the latest message is one of the events,
    and at a placeholder of its own, made during the replay, when not (``UserUttered.empty()``
    after a reset, possibly edited by a later event)."""
    if latest is None:
        return None
    for event in reversed(events):
        if event is latest:
            return latest
    if type(latest) is not kind:
        return latest
    placeholder = copy.copy(latest)
    placeholder.timestamp = time.time()
    return placeholder


COPY = Replacement(DialogueStateTracker, "copy", _copy_tracker)
PATCH = Patch("tracker copies", [COPY])

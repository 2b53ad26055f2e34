"""Trackers for the action tests."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker


def make_tracker(
    text: str,
    intent: str,
    *,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    channel: str = "twilio",
    message_id: str = "msg-1",
    guard: dict[str, Any] | None = None,
    after_user: list[dict[str, Any]] | None = None,
    reading: dict[str, Any] | None = None,
) -> Tracker:
    """A tracker whose latest event is a patient message (plus ``after_user`` events)."""
    parse_data: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": [],
        "message_id": message_id,
    }
    if guard is not None:
        parse_data["guard"] = guard
    if reading is not None:
        parse_data["reading"] = reading
    events = [
        {"event": "action", "name": "action_session_start", "timestamp": 1.0},
        {"event": "action", "name": "action_listen", "timestamp": 2.0},
        {"event": "user", "text": text, "parse_data": parse_data, "input_channel": channel,
         "message_id": message_id, "timestamp": 3.0},
        *(after_user or []),
    ]
    return Tracker.from_dict(
        {
            "sender_id": "conv-1",
            "slots": {"crisis_kind": None, "language": None, "escalation_id": None, "patient_name": None,
                      "phone": None, "preferred_time": None, "requested_slot": None, "handoff": False,
                      **(slots or {})},
            "latest_message": parse_data,
            "events": events,
            "paused": False,
            "followup_action": None,
            "active_loop": {"name": active_loop} if active_loop else {},
            "latest_action_name": "action_listen",
        }
    )

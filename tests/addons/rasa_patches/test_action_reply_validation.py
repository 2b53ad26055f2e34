"""addons.rasa_patches.action_reply_validation: Rasa's verdicts and errors on action replies."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from tests.addons.rasa_patches.helpers import action, original

VALID_REPLIES = [
    {},
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "full_name", "value": "Maria Lopez", "timestamp": None}],
     "responses": [{"response": "utter_ask_phone", "buttons": [], "text": None}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "action_listen"}]},
]
INVALID_REPLIES = [
    {"events": "not a list"},
    {"events": [{"event": "slot"}]},  # a slot event without a name
    {"events": [{"event": "no_such_event"}]},
    {"responses": ["not an object"]},
    [],
]


@pytest.mark.parametrize("reply", VALID_REPLIES)
def test_valid_action_replies_pass_as_before(patched: None, reply: dict) -> None:
    assert action()._validate_action_result(reply) is True
    assert original(lambda: action()._validate_action_result(reply)) is True


@pytest.mark.parametrize("reply", INVALID_REPLIES)
def test_invalid_action_replies_raise_rasas_error(patched: None, reply: Any) -> None:
    with pytest.raises(ValidationError) as ours:
        action()._validate_action_result(reply)

    def rasas() -> ValidationError:
        with pytest.raises(ValidationError) as theirs:
            action()._validate_action_result(reply)
        return theirs.value

    expected = original(rasas)
    assert ours.value.message == expected.message
    assert "Failed to validate Action server response" in ours.value.message
    assert list(ours.value.path) == list(expected.path)


def test_an_action_with_its_own_schema_keeps_rasas_code(patched: None) -> None:
    class Strict(RemoteAction):
        @staticmethod
        def action_response_format_spec() -> dict[str, Any]:
            return {"type": "object", "required": ["events"]}

    strict = Strict("action_x", EndpointConfig("http://127.0.0.1:1/webhook"))
    assert strict._validate_action_result({"events": []}) is True
    with pytest.raises(ValidationError):
        strict._validate_action_result({"responses": []})

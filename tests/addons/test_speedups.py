"""addons.speedups: the patched Rasa methods give exactly Rasa's results (and install once)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig

from addons import speedups


@pytest.fixture
def patched() -> Iterator[None]:
    was_installed = speedups.installed()
    speedups.install()
    yield
    if not was_installed:
        speedups.uninstall()


def original(call: Any) -> Any:
    """Runs ``call`` with Rasa's own methods, then restores the previous state."""
    was_installed = speedups.installed()
    speedups.uninstall()
    try:
        return call()
    finally:
        if was_installed:
            speedups.install()


def action() -> RemoteAction:
    return RemoteAction("action_booking_form_validate", EndpointConfig("http://127.0.0.1:1/webhook"))


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


def test_event_types_resolve_to_rasas_classes(patched: None) -> None:
    names = {cls.type_name for cls in all_subclasses(Event)}
    ours = {name: Event.resolve_by_type(name) for name in names}
    ours_again = {name: Event.resolve_by_type(name) for name in names}  # from the cache
    theirs = original(lambda: {name: Event.resolve_by_type(name) for name in names})
    assert ours == theirs == ours_again
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=Event) is Event
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")


def test_install_is_idempotent_and_uninstall_restores_rasa() -> None:
    was_installed = speedups.installed()
    speedups.uninstall()
    rasas = (RemoteAction._validate_action_result, Event.resolve_by_type)
    speedups.install()
    patched_once = (RemoteAction._validate_action_result, Event.resolve_by_type)
    speedups.install()
    assert (RemoteAction._validate_action_result, Event.resolve_by_type) == patched_once != rasas
    speedups.uninstall()
    assert (RemoteAction._validate_action_result, Event.resolve_by_type) == rasas
    if was_installed:
        speedups.install()


def test_the_clinic_nlg_installs_the_speedups() -> None:
    from addons.clinic_nlg import ClinicNLG

    ClinicNLG()
    assert speedups.installed()

"""Rasa 3.6 hot spots made cheap, with the same results (installed by the Rasa server's NLG).

Measured with py-spy on the Rasa server under ``make bench`` (README "Performance"):

1. ``RemoteAction._validate_action_result`` calls ``jsonschema.validate(reply, spec)`` on every
   custom action's reply. ``jsonschema.validate`` first checks the (constant) spec against the
   JSON-Schema metaschema, then builds a validator: ~22 ms of CPU per action call on this machine,
   about 30-40% of the Rasa server's busy time under load (every booking-form question and every
   escalation calls the action server). Here the spec is checked and the validator built once; each
   reply is still validated against the same schema and the same error (``best_match``, with
   Rasa's message appended) is raised. ~1 ms per call.
2. ``Event.resolve_by_type`` walks every ``Event`` subclass (recursively) for each event read from
   the tracker store or an action's reply. Here the class found for a type name is remembered;
   unknown names still take Rasa's own path (so subclasses defined later are still found, and
   errors and defaults are unchanged).

:func:`install` is idempotent; :func:`uninstall` restores Rasa's originals (tests).
"""

from __future__ import annotations

import threading
from typing import Any

from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event

_lock = threading.Lock()
_originals: dict[str, Any] = {}


def _spec_is_rasas(action: RemoteAction) -> bool:
    return type(action).action_response_format_spec is _originals["spec_function"]


class _ActionReplyValidator:
    """The validator of Rasa's action-reply schema, built (and the schema checked) once."""

    def __init__(self) -> None:
        from jsonschema.validators import validator_for

        schema = RemoteAction.action_response_format_spec()
        cls = validator_for(schema)
        cls.check_schema(schema)  # what jsonschema.validate does on every call
        self._validator = cls(schema)

    def validate(self, instance: Any) -> None:
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(instance))
        if error is not None:
            raise error


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    if not _spec_is_rasas(self):  # a subclass with its own schema: Rasa's own code
        return _originals["validate_action_result"](self, result)
    from jsonschema import ValidationError

    from rasa.core.actions.action import DOCS_BASE_URL

    try:
        _reply_validator().validate(result)
        return True
    except ValidationError as e:  # exactly as RemoteAction._validate_action_result
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


_validator: _ActionReplyValidator | None = None


def _reply_validator() -> _ActionReplyValidator:
    global _validator
    if _validator is None:
        _validator = _ActionReplyValidator()
    return _validator


_event_types: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    found = _event_types.get(type_name)
    if found is not None:
        return found
    resolved = _originals["resolve_by_type"](type_name, default)
    if resolved is not None and resolved is not default and getattr(resolved, "type_name", None) == type_name:
        _event_types[type_name] = resolved
    return resolved


def install() -> None:
    """Replaces the two Rasa methods (once per process)."""
    with _lock:
        if _originals:
            return
        _originals["validate_action_result"] = RemoteAction._validate_action_result
        _originals["spec_function"] = RemoteAction.action_response_format_spec
        _originals["resolve_by_type"] = Event.resolve_by_type
        RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
        Event.resolve_by_type = staticmethod(_resolve_by_type)  # type: ignore[method-assign]


def uninstall() -> None:
    """Puts Rasa's originals back."""
    with _lock:
        if not _originals:
            return
        RemoteAction._validate_action_result = _originals.pop("validate_action_result")  # type: ignore[method-assign]
        Event.resolve_by_type = staticmethod(_originals.pop("resolve_by_type"))  # type: ignore[method-assign]
        _originals.clear()
        _event_types.clear()


def installed() -> bool:
    return bool(_originals)

"""Replaces ``RemoteAction._validate_action_result``: the action-reply schema checked once.

Why: Rasa calls ``jsonschema.validate(reply, spec)`` on every custom action's reply, and
``jsonschema.validate`` first checks the (constant) spec against the JSON-Schema metaschema, then
builds a validator: ~22 ms of CPU per action call, about 30-40% of the Rasa server's busy time
under load (every booking-form question and every escalation calls the action server; measured
with py-spy under ``make bench``). Here the spec is checked and the validator built once; each
reply is still validated against the same schema and the same error (``best_match``, with
Rasa's message appended) is raised: ~1 ms per call. An action class with its own schema keeps
Rasa's code.
"""

from __future__ import annotations

from typing import Any

from rasa.core.actions.action import RemoteAction

from addons.rasa_patches.patch import Patch, Replacement

_RASAS_SPEC = RemoteAction.action_response_format_spec


class _ActionReplyValidator:
    """The validator of Rasa's action-reply schema, built (and the schema checked) once."""

    def __init__(self) -> None:
        from jsonschema.validators import validator_for

        schema = _RASAS_SPEC()
        cls = validator_for(schema)
        cls.check_schema(schema)  # what jsonschema.validate does on every call
        self._validator = cls(schema)

    def validate(self, instance: Any) -> None:
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(instance))
        if error is not None:
            raise error


_validator: _ActionReplyValidator | None = None


def _reply_validator() -> _ActionReplyValidator:
    global _validator
    if _validator is None:
        _validator = _ActionReplyValidator()
    return _validator


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    if type(self).action_response_format_spec is not _RASAS_SPEC:  # its own schema: Rasa's code
        return VALIDATE.original(self, result)
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


VALIDATE = Replacement(RemoteAction, "_validate_action_result", _validate_action_result)
PATCH = Patch("action reply validation", [VALIDATE])

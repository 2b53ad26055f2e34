"""Replaces ``RemoteAction.run`` and ``FormAction.validate_slots``: a custom action that cannot
run never leaves the patient in silence or without crisis help.

Why: Rasa 3.6, when the action server is down (or an action fails with an error), logs the
failure and carries on as if the action had returned nothing: the patient gets no answer, and
inside a form even a crisis message gets none (the form's validation fails before the crisis rule
can run). An action server that hangs is the same failure once ``ACTION_TIMEOUT_SECONDS`` pass
(:mod:`.action_server_sessions`; Rasa itself does not catch that timeout). With this patch:

1. **A custom action that fails** (``action_escalate_to_staff``, ``action_crisis_protocol``, the
   hand-off hold, a booking step...) answers with ``utter_escalation_failed`` instead ("I couldn't
   reach our team's inbox just now. Please call us at <clinic phone>... If this is an emergency,
   call 911."), rendered by Rasa from the domain, once per patient message. Nothing is recorded
   for it, so the reconciler (:mod:`clinic.staff.reconcile`) records the escalation once the action
   server is back: it finds the escalating action without an ``escalation_id``.
2. **A form whose validation cannot run**: a message that answers nothing the form asked (a
   crisis, a medical question, a request for a person, a FAQ: slot mappings exclude those intents)
   rejects the form as usual, so its rule runs (the crisis resources are rendered by Rasa itself).
   An answer that cannot be validated is not kept (its slot is emptied, so no unchecked phone
   number or time is booked later); the patient gets the message above and the same question
   again. The form stays active: once the action server is back, the booking goes on.

Rejections (``ActionExecutionRejection``) keep Rasa's behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from typing import Any

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction, create_bot_utterance
from rasa.core.actions.forms import FormAction
from rasa.shared.core.events import Event, SlotSet
from rasa.shared.exceptions import RasaException

from addons.rasa_patches.patch import Patch, Replacement

logger = logging.getLogger(__name__)
SAFE_RESPONSE = "utter_escalation_failed"
_REMEMBERED_TURNS = 2000

_lock = threading.Lock()
_told: OrderedDict[tuple[str, str], None] = OrderedDict()  # (conversation, message id) already told


def _first_time_this_turn(tracker: Any) -> bool:
    """Whether the patient's current message has not had the safe message yet (told once)."""
    latest = getattr(tracker, "latest_message", None)
    message_id = getattr(latest, "message_id", None) or str(len(getattr(tracker, "events", ()) or ()))
    key = (tracker.sender_id, message_id)
    with _lock:
        if key in _told:
            return False
        _told[key] = None
        while len(_told) > _REMEMBERED_TURNS:
            _told.popitem(last=False)
    return True


async def safe_message(action_name: str, tracker: Any, output_channel: Any, nlg: Any) -> list[Event]:
    """The events of the safe message for this patient message (none if already told)."""
    logger.warning("custom action %s could not run; the patient is told to call the clinic", action_name)
    if not _first_time_this_turn(tracker):
        return []
    message = await nlg.generate(SAFE_RESPONSE, tracker, output_channel.name())
    return [create_bot_utterance(message)] if message else []


async def _run_remote_action(
    self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any
) -> list[Event]:
    try:
        return await RUN.original(self, output_channel, nlg, tracker, domain)
    except ActionExecutionRejection:
        raise
    except asyncio.TimeoutError:
        logger.warning("custom action %s timed out (ACTION_TIMEOUT_SECONDS)", self.name())
        if _is_validation(self):
            raise RasaException(f"Custom action '{self.name()}' timed out") from None
    except RasaException:
        if _is_validation(self):
            raise
    return await safe_message(self.name(), tracker, output_channel, nlg)


def _is_validation(action: RemoteAction) -> bool:
    """A form's validation: its failure is decided by the form (below)."""
    return action.name().startswith("validate_")


async def _validate_slots(
    self: FormAction, slot_candidates: dict[str, Any], tracker: Any, domain: Any, output_channel: Any, nlg: Any
) -> list[Event]:
    try:
        return await VALIDATE.original(self, slot_candidates, tracker, domain, output_channel, nlg)
    except ActionExecutionRejection:
        raise
    except RasaException:
        if not slot_candidates:
            # nothing to validate: as if validation returned nothing (a message that answered no
            # question then rejects the form, and its own rule, e.g. the crisis rule, runs)
            logger.warning("validation of %s could not run; nothing to validate", self.name())
            return []
        # an answer that could not be checked is not kept; the question is asked again
        return [*(SlotSet(slot, None) for slot in slot_candidates),
                *await safe_message(f"validate_{self.name()}", tracker, output_channel, nlg)]


def _forget() -> None:
    with _lock:
        _told.clear()


RUN = Replacement(RemoteAction, "run", _run_remote_action)
VALIDATE = Replacement(FormAction, "validate_slots", _validate_slots)
PATCH = Patch("action failures", [RUN, VALIDATE], reset=_forget)

"""Rasa NLG adapter: domain responses filled with the clinic's profile values.

Registered in endpoints.yml (``nlg: type: addons.clinic_nlg.ClinicNLG``). It renders the
responses from domain.yml inside the Rasa server (no action server or HTTP hop), adding the
``{placeholders}`` of clinic.yml to the slot values. clinic.yml is re-read when it changes.
``{staff_reply_time}`` (the hand-off acknowledgement's) is worked out from its hours at send time.

Spanish answers are conditional variations on the ``language`` slot in domain.yml (Rasa picks
them); this NLG fills them with the profile's Spanish values, so a Spanish answer never carries
the clinic's English prose where clinic.yml words it in Spanish.

Rasa builds this NLG once in every Rasa server this project starts (from endpoints.yml), so its
constructor is where the server's process is prepared, explicitly and in one place:
:func:`addons.rasa_patches.install` (the changes to Rasa's own code),
:mod:`addons.rasa_patches.action_failures` (a custom action that cannot run gets the patient a safe message)
and :mod:`clinic.log_hygiene` (no patient data in logs at INFO and above).
"""

from __future__ import annotations

from typing import Any

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from addons import rasa_patches
from clinic import clock, log_hygiene
from clinic.profile import ProfileCache
from clinic.staff.reply_time import staff_reply_time


class ClinicNLG(TemplatedNaturalLanguageGenerator):
    """Templated NLG whose variables are the clinic profile plus slots plus kwargs."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, domain: Domain | None = None) -> None:
        super().__init__((domain or Domain.empty()).responses)
        server = endpoint_config is not None  # created by a Rasa server from endpoints.yml (not a unit test)
        # the one call site of the Rasa patches (server: with fair turns, a few messages at a time)
        rasa_patches.install(server=server)
        if server:
            log_hygiene.install()  # INFO+ logs: no message text, phone numbers or emails
        self._profile = ProfileCache()
        self._profile.get()  # fail at start-up, naming the field, if clinic.yml is invalid

    async def generate(
        self, utter_action: str, tracker: DialogueStateTracker, output_channel: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """The response; an FAQ answer to a question about suicide or self-harm ends with 988."""
        message = await super().generate(utter_action, tracker, output_channel, **kwargs)
        if message and message.get("text") and utter_action.startswith("utter_faq_") and _asked_about_crisis(tracker):
            resources = await super().generate(CRISIS_TOPIC_RESOURCES, tracker, output_channel, **kwargs)
            if resources and resources.get("text"):
                message["text"] = f"{message['text']}\n\n{resources['text']}"
        return message

    def _response_variables(  # type: ignore[override]
        self, filled_slots: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        language = (filled_slots or {}).get("language")
        values: dict[str, Any] = dict(self._profile.values(language))
        # the hand-off acknowledgement's "shortly" or "during business hours, next from Monday at 8 AM"
        values["staff_reply_time"] = staff_reply_time(self._profile.get(), clock.utcnow(), language)
        values.update({k: v for k, v in (filled_slots or {}).items() if v is not None})
        values.update(kwargs)
        return values


CRISIS_TOPIC_RESOURCES = "utter_crisis_topic_resources"


def _asked_about_crisis(tracker: DialogueStateTracker) -> bool:
    """Whether the patient's last message asked a general question about suicide or self-harm
    (the safety guard's ``crisis_topic``)."""
    guard = (tracker.latest_message.parse_data or {}).get("guard") if tracker.latest_message else None
    return isinstance(guard, dict) and bool(guard.get("crisis_topic"))

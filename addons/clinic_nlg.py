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

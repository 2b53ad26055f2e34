"""When staff will reply, in the patient's words: the ``{staff_reply_time}`` of the hand-off
acknowledgement (``utter_handoff_ack`` in domain.yml, filled by :mod:`addons.clinic_nlg`).

"shortly" while the clinic is open; outside its hours "during business hours, next from
Monday at 8 AM" (from clinic.yml's hours and time zone), so a patient who writes on a Saturday
evening knows nobody reads it before Monday. Spanish: "pronto", "en horario de atención (a
partir del lunes a las 8 a. m.)".
"""

from __future__ import annotations

from datetime import datetime

from clinic.dates import SPANISH, clock_text, weekday_name
from clinic.hours import describe_next_opening, is_open, next_opening
from clinic.profile import ClinicProfile

OPEN = {"en": "shortly", SPANISH: "pronto"}
# Spanish in parentheses: "a. m." ends with a period, and the response's own period follows
CLOSED = {"en": "during business hours, next from {when}", SPANISH: "en horario de atención (a partir {when})"}
NEVER_OPEN = {"en": "as soon as the clinic reopens", SPANISH: "en cuanto la clínica vuelva a abrir"}


def staff_reply_time(profile: ClinicProfile, now: datetime, language: str | None = "en") -> str:
    """The words after "they'll reply" / "te responderán" for a message written at ``now``."""
    lang = SPANISH if language == SPANISH else "en"
    if is_open(profile, now):
        return OPEN[lang]
    opening = next_opening(profile, now)
    if opening is None:
        return NEVER_OPEN[lang]
    when = _opening_es(profile, opening, now) if lang == SPANISH else describe_next_opening(profile, now)
    return CLOSED[lang].format(when=when)


def _opening_es(profile: ClinicProfile, opening: datetime, now: datetime) -> str:
    """"de hoy a las 8 a. m.", "de mañana martes a la 1 p. m.", "del lunes a las 8 a. m."."""
    days = (opening.date() - now.astimezone(profile.tz).date()).days
    clock = clock_text(opening.time(), SPANISH)
    at = f"a la {clock}" if opening.hour % 12 == 1 else f"a las {clock}"
    if days == 0:
        return f"de hoy {at}"
    if days == 1:
        return f"de mañana {weekday_name(opening.weekday(), SPANISH)} {at}"  # inside parentheses already
    return f"del {weekday_name(opening.weekday(), SPANISH)} {at}"

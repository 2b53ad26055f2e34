"""Custom actions: thin adapters from Rasa to the clinic package (``clinic``).

The action server (``rasa run actions --actions actions``) imports this package after it has
configured its logging, and offers no other hook. When the process that starts it sets
``CLINIC_LOG_HYGIENE=1`` (the launcher does, for the action server), the import installs
:mod:`clinic.log_hygiene`: from then on records at INFO and above carry no phone numbers, emails
or SQL parameters. Without it (tests, tools importing the actions) nothing is installed.
"""

from clinic import settings as _settings

if _settings.log_hygiene_enabled():
    from clinic import log_hygiene as _log_hygiene

    _log_hygiene.install()

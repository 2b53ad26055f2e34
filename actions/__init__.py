"""Custom actions: thin adapters from Rasa to the clinic package (``clinic``)."""

import sys as _sys

if _sys.argv[1:3] == ["run", "actions"]:  # the action server (`rasa run actions`), not a test importing us
    from clinic import log_hygiene as _log_hygiene

    # Imported after the server configured its logging: from then on its records at INFO and above
    # carry no phone numbers, emails or SQL parameters (clinic.log_hygiene).
    _log_hygiene.install()

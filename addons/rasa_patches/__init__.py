"""Every change this project makes to Rasa's own code, in one place.

Rasa 3.6.21 spends much of a busy server's time in a few internals (measured with py-spy under
``make bench``). Each module here replaces one of them with code that gives the same results
more cheaply, and says in its docstring which internal it replaces and why:

- :mod:`.action_reply_validation` ``RemoteAction._validate_action_result``
- :mod:`.event_types` ``Event.resolve_by_type``
- :mod:`.graph_runner` ``DaskGraphRunner.run``
- :mod:`.action_server_sessions` ``EndpointConfig.session``
- :mod:`.dialogue_states` ``Domain.states_for_tracker_history``
- :mod:`.slot_copy` ``Slot.__copy__`` (added)
- :mod:`.rule_checks` ``RulePolicy._is_rule_applicable``
- :mod:`.domain_is_empty` ``Domain.is_empty``
- :mod:`.tracker_copy` ``DialogueStateTracker.copy``
- :mod:`.rule_index` ``RulePolicy._get_possible_keys``
- :mod:`.debug_log_copies` the ``copy`` module of three Rasa modules
- :mod:`.fair_turns` ``MessageProcessor.handle_message`` and ``EndpointConfig.request``
  (the order in which a server works on messages; server only)
- :mod:`.repeated_requests` ``MessageProcessor.handle_message`` (a request a proxy delivers twice
  is processed once; server only)

:mod:`.registry` lists them; :mod:`.patch` is what a patch is. Importing this package changes
nothing: :func:`install` is called in one place, when Rasa builds the server's NLG
(``addons.clinic_nlg.ClinicNLG.__init__``, the ``nlg`` of endpoints.yml). It installs the
patches only on the Rasa version they were tested against (:data:`TESTED_RASA_VERSION`, the
version requirements.txt pins); on any other version Rasa runs unpatched and one warning is
logged. The tests of each patch compare it with Rasa's own method; after a Rasa upgrade they must
pass before :data:`TESTED_RASA_VERSION` moves.

Tests: ``tests/conftest.py`` uninstalls whatever a test installed once it ends.
"""

from __future__ import annotations

import logging

from addons.rasa_patches.patch import Patch, installed_patches, lock

__all__ = ["TESTED_RASA_VERSION", "Patch", "install", "installed", "rasa_version_supported", "uninstall"]

TESTED_RASA_VERSION = "3.6.21"

logger = logging.getLogger(__name__)
_warned = False  # about another Rasa version, once per process


def rasa_version_supported() -> bool:
    """Whether the installed Rasa is the version the patches were tested against."""
    import rasa

    return rasa.__version__ == TESTED_RASA_VERSION


def install(*, server: bool) -> None:
    """Installs the patches (idempotent), or none if Rasa is another version than the tested one.

    ``server``: a Rasa server is being built (an NLG from endpoints.yml), so the server-only
    patches are installed too; ``False`` for a bare ``ClinicNLG()`` in a unit test. If a patch
    fails to install, those installed by this call are removed again and the error is raised.
    """
    global _warned
    if not rasa_version_supported():
        if not _warned:
            _warned = True
            import rasa

            logger.warning(
                "Rasa %s is not the version the patches in addons/rasa_patches were tested against (%s): "
                "Rasa runs unpatched (slower; messages are not taken in fair turns).",
                rasa.__version__, TESTED_RASA_VERSION)
        return
    from addons.rasa_patches.registry import PATCHES

    with lock():
        done: list[Patch] = []
        try:
            for patch in PATCHES:
                if (server or not patch.server_only) and not patch.installed:
                    patch.install()
                    done.append(patch)
        except BaseException:
            for patch in reversed(done):
                patch.uninstall()
            raise


def uninstall() -> None:
    """Puts Rasa's originals back (every installed patch, in reverse install order)."""
    with lock():
        for patch in reversed(installed_patches()):
            patch.uninstall()


def installed() -> list[Patch]:
    """The patches installed now, in install order."""
    return installed_patches()

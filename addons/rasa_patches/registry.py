"""Every Rasa patch of this project, in install order (uninstalled in reverse).

Imported by :func:`addons.rasa_patches.install` only once the Rasa version is the tested one:
the patch modules import the Rasa internals they replace.
"""

from __future__ import annotations

from addons.rasa_patches import (
    action_failures,
    action_reply_validation,
    action_server_sessions,
    debug_log_copies,
    dialogue_states,
    domain_is_empty,
    event_types,
    fair_turns,
    graph_runner,
    repeated_requests,
    rule_checks,
    rule_index,
    slot_copy,
    tracker_copy,
)
from addons.rasa_patches.patch import Patch

PATCHES: list[Patch] = [
    action_reply_validation.PATCH,
    event_types.PATCH,
    graph_runner.PATCH,
    action_server_sessions.PATCH,
    dialogue_states.PATCH,
    slot_copy.PATCH,
    rule_checks.PATCH,
    domain_is_empty.PATCH,
    tracker_copy.PATCH,
    rule_index.PATCH,
    debug_log_copies.PATCH,
    action_failures.PATCH,
    fair_turns.PATCH,  # server only
    repeated_requests.PATCH,  # server only; outside fair turns: a repeat takes no turn
]

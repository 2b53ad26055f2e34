"""Replaces the ``copy`` module seen by three Rasa modules: deep copies only while debug is logged.

Why: the message processor, the rule policy and the memoization policy deep-copy the dialogue
states, events and parse data they pass to ``structlogger.debug`` (so a debug log shows them as
they were), at every prediction and every action, also when debug logging is off and the call
does nothing: ~0.27 ms per message in-process. Those modules use ``copy`` for nothing else
(``tests/addons/rasa_patches/test_debug_log_copies.py`` reads their source to check that), so
they now see a ``copy`` whose ``deepcopy`` copies only while structlog's debug level is on
(``rasa run --debug`` logs the same as before) and otherwise hands the object to the no-op call
as it is.
"""

from __future__ import annotations

import copy
import importlib
import types
from typing import Any

from addons.rasa_patches.patch import Patch, Replacement

# Rasa modules whose only use of ``copy.deepcopy`` is for arguments of structlog debug calls.
DEBUG_COPYING_MODULES = ("rasa.core.processor", "rasa.core.policies.rule_policy", "rasa.core.policies.memoization")


class _DebugOnlyCopy(types.ModuleType):
    """The ``copy`` module, except that ``deepcopy`` copies only while structlog logs debug."""

    def __init__(self) -> None:
        super().__init__("copy")
        self.__dict__.update({k: v for k, v in vars(copy).items() if not k.startswith("__")})
        self.deepcopy = _deepcopy_if_debug_logged


def _deepcopy_if_debug_logged(value: Any, memo: dict[int, Any] | None = None) -> Any:
    return copy.deepcopy(value, memo) if _structlog_debug_on() else value


def _structlog_debug_on() -> bool:
    import structlog

    wrapper = structlog.get_config().get("wrapper_class")
    debug = getattr(wrapper, "debug", None)
    return debug is None or getattr(debug, "__name__", "") != "_nop"


PATCH = Patch("debug-log copies", [Replacement(importlib.import_module(name), "copy", _DebugOnlyCopy())
                                   for name in DEBUG_COPYING_MODULES])

"""addons.rasa_patches.debug_log_copies: Rasa's debug-log arguments copied only when debug is
logged, and nothing else deep-copied in those modules."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging

import pytest

from addons.rasa_patches.debug_log_copies import DEBUG_COPYING_MODULES


@pytest.mark.parametrize("name", DEBUG_COPYING_MODULES)
def test_rasas_debug_log_arguments_are_copied_only_when_debug_is_logged(patched: None, name: str) -> None:
    import structlog
    from rasa.utils.log_utils import configure_structlog

    module = importlib.import_module(name)
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    before = structlog.get_config()
    try:
        configure_structlog(logging.INFO)
        assert module.copy.deepcopy(states) is states  # the debug call drops it unread
        assert module.copy.copy(states) == states and module.copy.copy(states) is not states
        configure_structlog(logging.DEBUG)
        logged = module.copy.deepcopy(states)
        assert logged == states and logged[0]["user"] is not states[0]["user"]  # a snapshot, as Rasa's
    finally:
        structlog.configure(**before)


@pytest.mark.parametrize("name", DEBUG_COPYING_MODULES)
def test_those_modules_deep_copy_nothing_but_debug_log_arguments(name: str) -> None:
    """If a Rasa upgrade deep-copies something for real in these modules, this fails."""
    tree = ast.parse(inspect.getsource(importlib.import_module(name)))
    in_debug_calls = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "debug"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "structlogger"):
            in_debug_calls.update(id(inner) for inner in ast.walk(node))
    deep_copies = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "deepcopy"]
    uses_of_copy = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name) and node.value.id == "copy"}

    assert deep_copies
    assert all(id(node) in in_debug_calls for node in deep_copies)
    assert uses_of_copy <= {"deepcopy", "copy"}

"""addons.rasa_patches: one registry, installed only on the tested Rasa version, idempotent, and
uninstalled back to Rasa's own code."""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

import pytest

from addons import rasa_patches
from addons.rasa_patches.registry import PATCHES
from clinic.settings import PROJECT_DIR

_ABSENT = object()


def own_attributes() -> list[Any]:
    """What each replaced attribute's owner holds itself (not inherited), for every patch."""
    return [vars(r.owner).get(r.name, _ABSENT) for patch in PATCHES for r in patch.replacements]


def same_objects(these: list[Any], those: list[Any]) -> bool:
    return len(these) == len(those) and all(a is b for a, b in zip(these, those))


def rasas_methods() -> tuple[Any, ...]:
    """The Rasa internals the patches replace, named one by one (independent of the registry)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.processor import MessageProcessor
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.slots import Slot
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    return (RemoteAction._validate_action_result, Event.resolve_by_type, DaskGraphRunner.run,
            EndpointConfig.session, Domain.states_for_tracker_history, RulePolicy._is_rule_applicable,
            Domain.is_empty, getattr(Slot, "__copy__", None), DialogueStateTracker.copy,
            RulePolicy._get_possible_keys, MessageProcessor.handle_message, EndpointConfig.request,
            *(importlib.import_module(name).copy for name in
              ("rasa.core.processor", "rasa.core.policies.rule_policy", "rasa.core.policies.memoization")))


def test_the_tested_version_is_the_one_requirements_pin() -> None:
    pinned = re.search(r"^rasa==(\S+)", (PROJECT_DIR / "requirements.txt").read_text(encoding="utf-8"), re.MULTILINE)
    assert pinned and pinned.group(1) == rasa_patches.TESTED_RASA_VERSION
    assert rasa_patches.rasa_version_supported()


def test_install_and_uninstall_round_trip_restores_rasas_originals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "1")
    rasa_patches.uninstall()
    rasas, rasas_own = rasas_methods(), own_attributes()

    rasa_patches.install(server=True)
    once, once_own = rasas_methods(), own_attributes()
    rasa_patches.install(server=True)  # idempotent
    assert rasa_patches.installed() == PATCHES
    assert same_objects(list(rasas_methods()), list(once)) and same_objects(own_attributes(), once_own)
    assert all(ours is not theirs for ours, theirs in zip(once, rasas))

    rasa_patches.uninstall()
    assert rasa_patches.installed() == []
    assert same_objects(list(rasas_methods()), list(rasas))
    assert same_objects(own_attributes(), rasas_own)  # the very same objects (a staticmethod stays one)
    from rasa.shared.core.slots import Slot

    assert "__copy__" not in vars(Slot)  # added by a patch, removed again


def test_without_a_server_the_server_only_patches_stay_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "1")
    rasa_patches.uninstall()

    rasa_patches.install(server=False)
    assert rasa_patches.installed() == [p for p in PATCHES if not p.server_only]
    assert any(p.server_only for p in PATCHES)

    rasa_patches.install(server=True)  # a server built later adds them
    assert rasa_patches.installed() == PATCHES


def test_a_patch_that_cannot_install_takes_back_the_others_of_that_call(monkeypatch: pytest.MonkeyPatch) -> None:
    rasa_patches.uninstall()
    rasas_own = own_attributes()
    monkeypatch.setenv("RASA_CONCURRENT_TURNS", "0")  # the fair turns patch refuses it

    with pytest.raises(ValueError, match="RASA_CONCURRENT_TURNS"):
        rasa_patches.install(server=True)

    assert rasa_patches.installed() == []
    assert same_objects(own_attributes(), rasas_own)


def test_another_rasa_version_installs_nothing_and_warns_once(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    import rasa

    rasa_patches.uninstall()
    rasas_own = own_attributes()
    monkeypatch.setattr(rasa, "__version__", "3.6.22")
    monkeypatch.setattr(rasa_patches, "_warned", False)

    with caplog.at_level(logging.WARNING, logger=rasa_patches.__name__):
        rasa_patches.install(server=True)
        rasa_patches.install(server=False)
        rasa_patches.install(server=True)

    assert rasa_patches.installed() == []
    assert same_objects(own_attributes(), rasas_own)
    warnings = [r for r in caplog.records if r.name == rasa_patches.__name__]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "3.6.22" in warnings[0].getMessage() and "3.6.21" in warnings[0].getMessage()
    assert "unpatched" in warnings[0].getMessage()


PATCH_MODULES = ("action_reply_validation", "event_types", "graph_runner", "action_server_sessions",
                 "dialogue_states", "slot_copy", "rule_checks", "domain_is_empty", "tracker_copy", "rule_index",
                 "debug_log_copies", "action_failures", "fair_turns", "repeated_requests")


def test_the_registry_has_one_patch_per_module() -> None:
    assert len(PATCHES) == len(PATCH_MODULES) == 14 and len({p.name for p in PATCHES}) == 14


@pytest.mark.parametrize("name", PATCH_MODULES)
def test_every_patch_module_says_what_it_replaces_and_why(name: str) -> None:
    module = importlib.import_module(f"addons.rasa_patches.{name}")
    doc = module.__doc__ or ""

    assert re.match(r"(Replaces|Adds|Wraps) ", doc)
    assert "Why:" in doc
    assert module.PATCH in PATCHES


def test_the_registry_is_imported_only_by_install() -> None:
    """Importing the package changes nothing and imports no patch module (they import Rasa's
    internals): a fresh interpreter shows it."""
    import subprocess
    import sys

    code = ("import sys, addons.rasa_patches as p; "
            "assert 'addons.rasa_patches.registry' not in sys.modules; "
            "assert not [m for m in sys.modules if m.startswith('rasa.core')]; "
            "assert p.installed() == []")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, check=True, timeout=60)

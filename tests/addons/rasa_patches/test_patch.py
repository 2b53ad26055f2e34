"""addons.rasa_patches.patch: a patch replaces its attributes together and restores exactly
what was there."""

from __future__ import annotations

import pytest

from addons.rasa_patches.patch import Patch, Replacement, installed_patches


class Target:
    def method(self) -> str:
        return "theirs"

    @staticmethod
    def static() -> str:
        return "theirs"


class Child(Target):
    pass


def test_install_replaces_and_uninstall_restores_the_very_same_objects() -> None:
    own = dict(vars(Target))
    forgotten: list[str] = []
    method = Replacement(Target, "method", lambda self: "ours, after " + method.original(self))
    static = Replacement(Target, "static", staticmethod(lambda: "ours"))
    added = Replacement(Child, "method", lambda self: "child's")  # Child has none of its own
    patch = Patch("test", [method, static, added], reset=lambda: forgotten.append("reset"))

    patch.install()
    patch.install()  # idempotent
    try:
        assert patch.installed and installed_patches().count(patch) == 1
        assert Target().method() == "ours, after theirs" and Target.static() == "ours"
        assert Child().method() == "child's"
    finally:
        patch.uninstall()
    patch.uninstall()  # idempotent

    assert not patch.installed and patch not in installed_patches()
    assert all(vars(Target)[name] is value for name, value in own.items())  # the staticmethod object too
    assert "method" not in vars(Child) and Child().method() == "theirs"
    assert forgotten == ["reset"]


def test_a_failed_install_leaves_nothing_replaced() -> None:
    before = vars(Target)["method"]
    patch = Patch("test", [Replacement(Target, "method", lambda self: "ours"),
                           Replacement(object, "no_such_thing", 1)])  # object's attributes are read-only

    with pytest.raises(TypeError):
        patch.install()

    assert not patch.installed and vars(Target)["method"] is before


def test_a_refused_install_replaces_nothing() -> None:
    def refuse() -> None:
        raise ValueError("bad setting")

    before = vars(Target)["method"]
    patch = Patch("test", [Replacement(Target, "method", lambda self: "ours")], prepare=refuse)

    with pytest.raises(ValueError, match="bad setting"):
        patch.install()

    assert not patch.installed and vars(Target)["method"] is before


def test_a_patch_replaces_something() -> None:
    with pytest.raises(ValueError):
        Patch("empty", [])

"""What a patch is: a named set of replaced Rasa attributes, installed and uninstalled as one.

A :class:`Replacement` sets ``owner.name`` (a class or a module attribute) to a new value and
remembers what the owner itself held before, so uninstalling restores exactly that object (or
removes the attribute again when the owner had none of its own, as with ``Slot.__copy__``).
While installed, :attr:`Replacement.original` is what ``owner.name`` gave before: the patched
code calls it to fall back on Rasa's own behaviour.

A :class:`Patch` installs its replacements together (idempotent) and undoes them in reverse
order; its ``reset`` forgets what it cached, so a reinstalled patch starts afresh. No Rasa module
is imported here: the registry imports the patch modules only once the Rasa version is the one
they were tested against (:mod:`addons.rasa_patches`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

_ABSENT = object()
_lock = threading.RLock()
_installed: list[Patch] = []  # in install order


class Replacement:
    """``owner.name = new`` while its patch is installed."""

    def __init__(self, owner: Any, name: str, new: Any) -> None:
        self.owner, self.name, self.new = owner, name, new
        # Rasa's value, for calling it (kept after uninstalling: a call already under way
        # when the patch is removed still finishes with it)
        self.original: Any = None
        self._own: Any = _ABSENT  # what the owner's own __dict__ held (a staticmethod stays one)

    def __repr__(self) -> str:
        return f"<Replacement {getattr(self.owner, '__name__', self.owner)}.{self.name}>"

    def apply(self) -> None:
        self._own = vars(self.owner).get(self.name, _ABSENT)
        self.original = getattr(self.owner, self.name, None)
        setattr(self.owner, self.name, self.new)

    def restore(self) -> None:
        if self._own is _ABSENT:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self._own)
        self._own = _ABSENT


class Patch:
    """One change to Rasa: its replacements, installed and uninstalled together.

    ``prepare`` runs before anything is replaced (it may refuse by raising, e.g. on a bad
    setting); ``reset`` runs after everything is restored (caches emptied). ``server_only``:
    installed only in a Rasa server (an NLG built from endpoints.yml), not by a bare
    ``ClinicNLG()`` in a unit test.
    """

    def __init__(self, name: str, replacements: Sequence[Replacement], *,
                 prepare: Callable[[], None] | None = None, reset: Callable[[], None] | None = None,
                 server_only: bool = False) -> None:
        if not replacements:
            raise ValueError(f"patch {name!r} replaces nothing")
        self.name = name
        self.replacements = tuple(replacements)
        self.server_only = server_only
        self._prepare, self._reset = prepare, reset

    def __repr__(self) -> str:
        return f"<Patch {self.name}{' (installed)' if self.installed else ''}>"

    @property
    def installed(self) -> bool:
        return self in _installed

    def install(self) -> None:
        """Replaces the attributes (idempotent); on an error, nothing stays replaced."""
        with _lock:
            if self.installed:
                return
            if self._prepare is not None:
                self._prepare()
            done: list[Replacement] = []
            try:
                for replacement in self.replacements:
                    replacement.apply()
                    done.append(replacement)
            except BaseException:
                for replacement in reversed(done):
                    replacement.restore()
                raise
            _installed.append(self)

    def uninstall(self) -> None:
        """Puts Rasa's own attributes back (idempotent)."""
        with _lock:
            if not self.installed:
                return
            for replacement in reversed(self.replacements):
                replacement.restore()
            _installed.remove(self)
            if self._reset is not None:
                self._reset()


def installed_patches() -> list[Patch]:
    """The patches installed in this process, in install order."""
    with _lock:
        return list(_installed)


def lock() -> threading.RLock:
    """The lock that install and uninstall hold (reentrant): for installing several at once."""
    return _lock

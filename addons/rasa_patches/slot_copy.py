"""Adds ``Slot.__copy__`` (Rasa defines none): a slot copied without the pickle protocol.

Why: every tracker Rasa builds (one per action while replaying a conversation for the states, one
per action run, one per read) copies each slot with ``copy.copy``, which goes through the pickle
protocol: ~4% of the server's time. Rasa's slot classes define no copy or pickle methods, so
``copy.copy`` makes a new object of the same class with the same ``__dict__``; this
``__copy__`` does just that directly. A subclass with its own pickle methods keeps the pickle
protocol. Uninstalling removes the attribute again.
"""

from __future__ import annotations

import copy

from rasa.shared.core.slots import Slot

from addons.rasa_patches.patch import Patch, Replacement

_PICKLE_METHODS = ("__reduce_ex__", "__reduce__", "__getstate__", "__setstate__", "__getnewargs_ex__", "__getnewargs__")


def _plain(cls: type) -> bool:
    """No class between ``cls`` and ``object`` defines a pickle method (true for Rasa's slots)."""
    return not any(name in vars(klass) for klass in cls.__mro__[:-1] for name in _PICKLE_METHODS)


_plain_slot_classes: dict[type, bool] = {}


def _copy_slot(self: Slot) -> Slot:
    cls = type(self)
    plain = _plain_slot_classes.get(cls)
    if plain is None:
        plain = _plain_slot_classes[cls] = _plain(cls)
    if not plain:  # what copy.copy does without __copy__
        return copy._reconstruct(self, None, *cls.__reduce_ex__(self, 4))  # type: ignore[attr-defined]
    new = cls.__new__(cls)
    new.__dict__.update(self.__dict__)
    return new


PATCH = Patch("slot copies", [Replacement(Slot, "__copy__", _copy_slot)], reset=_plain_slot_classes.clear)

"""addons.rasa_patches.slot_copy: slots copied as ``copy.copy`` copies them."""

from __future__ import annotations

import copy
from typing import Any

from rasa.shared.core.slots import Slot, TextSlot

from tests.addons.rasa_patches.helpers import original, story_trackers


def test_slots_are_copied_as_copy_copy_copies_them(patched: None) -> None:
    domain, _ = story_trackers()
    for slot in domain.slots:
        slot.value = {"list": [1]} if slot.type_name == "any" else slot.value
        ours = copy.copy(slot)
        theirs = original(lambda slot=slot: copy.copy(slot))
        assert type(ours) is type(theirs) is type(slot) and ours is not slot
        assert ours.__dict__ == theirs.__dict__ == slot.__dict__

    class Custom(TextSlot):
        def __reduce_ex__(self, protocol: Any) -> Any:
            return (Custom, ("rebuilt", []), {"value": "from reduce"})

    custom = Custom("original", [])
    ours, theirs = copy.copy(custom), original(lambda: copy.copy(custom))
    assert ours.name == theirs.name == "rebuilt"  # its own pickle method was used
    assert ours.__dict__ == theirs.__dict__
    assert isinstance(custom, Slot)

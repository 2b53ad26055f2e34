"""addons.rasa_patches.event_types: event type names resolve to Rasa's classes."""

from __future__ import annotations

import pytest
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

from tests.addons.rasa_patches.helpers import original


def test_event_types_resolve_to_rasas_classes(patched: None) -> None:
    names = {cls.type_name for cls in all_subclasses(Event)}
    ours = {name: Event.resolve_by_type(name) for name in names}
    ours_again = {name: Event.resolve_by_type(name) for name in names}  # from the cache
    theirs = original(lambda: {name: Event.resolve_by_type(name) for name in names})
    assert ours == theirs == ours_again
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=Event) is Event
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")

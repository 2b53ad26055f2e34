"""Replaces ``Event.resolve_by_type``: the class found for an event type name is remembered.

Why: Rasa walks every ``Event`` subclass (recursively) for each event read from the tracker
store or from an action's reply. Here a name once resolved is answered from a dict; unknown names
still take Rasa's own path, so subclasses defined later are still found, and the errors and the
``default`` are unchanged.
"""

from __future__ import annotations

from rasa.shared.core.events import Event

from addons.rasa_patches.patch import Patch, Replacement

_event_types: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    found = _event_types.get(type_name)
    if found is not None:
        return found
    resolved = RESOLVE.original(type_name, default)
    if resolved is not None and resolved is not default and getattr(resolved, "type_name", None) == type_name:
        _event_types[type_name] = resolved
    return resolved


RESOLVE = Replacement(Event, "resolve_by_type", staticmethod(_resolve_by_type))
PATCH = Patch("event types", [RESOLVE], reset=_event_types.clear)

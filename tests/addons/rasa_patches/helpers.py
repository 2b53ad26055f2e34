"""What the patch tests share: Rasa's own result of a call, and this project's conversations."""

from __future__ import annotations

import time
from typing import Any

from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from addons import rasa_patches


def original(call: Any) -> Any:
    """Runs ``call`` with Rasa's own methods, then reinstalls the patches that were installed."""
    was = rasa_patches.installed()
    rasa_patches.uninstall()
    try:
        return call()
    finally:
        for patch in was:
            patch.install()


def story_trackers() -> list[Any]:
    """The domain, and every prefix (at each action) of this project's test conversations as trackers."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    from clinic.settings import PROJECT_DIR

    domain = Domain.load(str(PROJECT_DIR / "domain.yml"))
    steps = YAMLStoryReader(domain).read_from_file(str(PROJECT_DIR / "tests" / "test_stories.yml"))
    trackers = []
    for step in steps:
        events = [ActionExecuted("action_listen"), *step.events]
        cuts = [i for i, e in enumerate(events) if isinstance(e, ActionExecuted)] + [len(events)]
        for cut in cuts[1:]:
            trackers.append(DialogueStateTracker.from_events(step.block_name, events[:cut], domain.slots))
    return [domain, trackers]


def served_trackers() -> list[Any]:
    """Trackers as the server holds them: read back from stored events, with a model id, in the
    middle of a form, after a session start (placeholders for the latest messages), edited."""
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        DefinePrevUserUtteredFeaturization,
        SessionStarted,
        SlotSet,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    domain, trackers = story_trackers()
    served = [DialogueStateTracker.from_dict(t.sender_id, [e.as_dict() for e in t.events], domain.slots)
              for t in trackers]
    for tracker in served[::7]:
        tracker.model_id, tracker.assistant_id, tracker.sender_source = "model-1", "clinic", "rest"
    fresh = DialogueStateTracker.from_events("fresh", [ActionExecuted("action_session_start"), SessionStarted(),
                                                       ActionExecuted("action_listen")], domain.slots)
    fresh.update(DefinePrevUserUtteredFeaturization(True))  # edits the placeholder latest message
    both = DialogueStateTracker.from_events("both", [UserUttered("hi", {"name": "greet"}), BotUttered("hello"),
                                                     SlotSet("patient_name", "Sam")], domain.slots)
    return [*served, fresh, both, DialogueStateTracker("", domain.slots)]


def tracker_state(tracker: Any) -> dict[str, Any]:
    """Everything a tracker holds, for comparing a copy with Rasa's replayed copy."""
    import dataclasses

    from rasa.shared.core.trackers import EventVerbosity

    return {
        "type": type(tracker),
        "events": list(tracker.events),
        "same event objects": [id(e) for e in tracker.events],
        "slots": {name: (type(slot), vars(slot)) for name, slot in tracker.slots.items()},
        "active_loop": dataclasses.asdict(tracker.active_loop) if tracker.active_loop else None,
        "latest_message": latest(tracker.latest_message, tracker.events),
        "latest_bot_utterance": latest(tracker.latest_bot_utterance, tracker.events),
        "plain": {key: value for key, value in vars(tracker).items()
                  if key not in {"events", "slots", "active_loop", "latest_message", "latest_bot_utterance"}
                  and not key.startswith("_clinic_")},
        "dump": tracker.current_state(EventVerbosity.ALL),
    }


def latest(message: Any, events: Any) -> tuple[dict[str, Any], bool]:
    """A latest message's content, and whether it is one of the events (else a placeholder,
    whose timestamp is when it was made)."""
    one_of_them = any(e is message for e in events)
    content = dict(vars(message))
    if not one_of_them:
        assert abs(content.pop("timestamp") - time.time()) < 60
    return content, one_of_them


def rule_policy(agent: Any) -> Any:
    """The agent's rule policy."""
    from rasa.core.policies.rule_policy import RulePolicy

    found = [node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
             if isinstance(getattr(node, "_component", None), RulePolicy)]
    assert len(found) == 1
    return found[0]


def action(name: str = "action_booking_form_validate") -> RemoteAction:
    return RemoteAction(name, EndpointConfig("http://127.0.0.1:1/webhook"))


# every set of arguments the policies ask the dialogue states with
ARGUMENTS = [{}, {"omit_unset_slots": True}, {"ignore_rule_only_turns": True},
             {"ignore_rule_only_turns": True, "rule_only_data": {"slots": ["handoff"], "active_loops": []}}]

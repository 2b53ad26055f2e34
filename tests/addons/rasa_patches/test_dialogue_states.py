"""addons.rasa_patches.dialogue_states: Rasa's dialogue states, from one replay per tracker."""

from __future__ import annotations

import asyncio
from typing import Any

from addons.rasa_patches.dialogue_states import STATES_MEMO
from tests.addons.rasa_patches.helpers import ARGUMENTS, original, rule_policy, story_trackers


def test_dialogue_states_are_rasas_and_callers_cannot_spoil_them(patched: None) -> None:
    domain, trackers = story_trackers()
    assert len(trackers) > 50
    for tracker in trackers:
        for arguments in ARGUMENTS:
            ours = tracker.past_states(domain, **arguments)
            theirs = original(lambda tracker=tracker, arguments=arguments: tracker.past_states(domain, **arguments))
            assert ours == theirs
            if ours and ours[-1].get("user"):
                ours[-1]["user"].clear()  # as the rule policy edits the last state
            assert tracker.past_states(domain, **arguments) == theirs  # from the memo, unspoilt


def test_remembered_states_follow_the_conversation(patched: None) -> None:
    from rasa.shared.core.events import ActionExecuted, SlotSet

    domain, trackers = story_trackers()
    tracker = trackers[5]
    before = tracker.past_states(domain)
    assert STATES_MEMO in tracker.__dict__
    tracker.update(SlotSet("handoff", True), domain)
    tracker.update(ActionExecuted("action_listen"), domain)
    after = tracker.past_states(domain)
    assert after != before
    assert after == original(lambda: tracker.past_states(domain))


def test_dialogue_states_of_served_conversations_with_hidden_rule_turns_are_rasas(patched: None, agent: Any) -> None:
    """Conversations played through the model, where rule-only turns are hidden from the
    memoization policy's states: every prefix gives Rasa's states for every set of arguments."""
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    async def play(sender: str, texts: list[str]) -> Any:
        for text in texts:
            await agent.handle_text(text, sender_id=sender)
        return await agent.tracker_store.retrieve(sender)

    conversations = [["hi", "how much does a single infusion cost", "thanks", "what are the side effects"],
                     ["hello", "I take lithium, is ketamine safe for me?", "ok"],
                     ["hey", "what is ketamine", "i want to die"]]
    trackers = [asyncio.run(play(f"states-{n}", texts)) for n, texts in enumerate(conversations)]
    events = [e for t in trackers for e in t.events]
    assert any(isinstance(e, ActionExecuted) and e.hide_rule_turn for e in events)
    rule_only = rule_policy(agent)._get_rule_only_data()
    arguments = [*ARGUMENTS, {"ignore_rule_only_turns": True, "rule_only_data": rule_only}]
    for tracker in trackers:
        for cut in [i for i, e in enumerate(tracker.events) if isinstance(e, ActionExecuted)] + [len(tracker.events)]:
            prefix = DialogueStateTracker.from_events(tracker.sender_id, list(tracker.events)[:cut],
                                                      agent.domain.slots)
            for args in arguments:
                assert prefix.past_states(agent.domain, **args) == original(
                    lambda prefix=prefix, args=args: prefix.past_states(agent.domain, **args))

"""All the patches at once (a server's set but fair turns) give Rasa's parses and predictions."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.addons.rasa_patches.helpers import original, story_trackers

MESSAGES = ["hi there", "how much does a single infusion cost", "I take lithium, is ketamine safe for me?",
            "i want to die", "book a consultation", "", "Maria Lopez", "¿cuánto cuesta?", "x" * 3000]


def test_parses_and_predictions_are_rasas(patched: None, agent: Any) -> None:
    """Graph runner, states memo, rule checks and index, slot and tracker copies against none."""
    from rasa.shared.core.events import ActionExecuted, UserUttered

    async def run() -> list[Any]:
        results = []
        for text in MESSAGES:
            parse = await agent.parse_message(text)
            tracker = agent.tracker_store.init_tracker(f"graph-{len(results)}")
            tracker.update(ActionExecuted("action_listen"))
            tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), agent.domain)
            prediction = agent.processor._predict_next_with_tracker(tracker)
            results.append((parse, prediction.probabilities, prediction.policy_name, prediction.events))
        return results

    ours = asyncio.run(run())
    theirs = original(lambda: asyncio.run(run()))
    assert ours == theirs
    assert {p["intent"]["name"] for p, *_ in ours} >= {"greet", "crisis"}


def test_predictions_over_whole_test_conversations_are_rasas(patched: None, agent: Any) -> None:
    """Every prefix of the test conversations (forms, slots, crisis inside a form...): the same
    next action, probabilities and policy with all patches as without."""
    _, trackers = story_trackers()

    def predict() -> list[Any]:
        results = []
        for tracker in trackers:
            prediction = agent.processor._predict_next_with_tracker(tracker.copy())
            results.append((prediction.max_confidence_index, prediction.policy_name, prediction.probabilities))
        return results

    ours = predict()
    assert ours == original(predict)
    assert len({policy for _, policy, _ in ours}) >= 2  # rules and memoization both decided some

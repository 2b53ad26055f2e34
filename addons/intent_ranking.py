"""Changing a message's intent the way Rasa's own classifiers leave it: chosen intent first.

The NLU components after the classifier (the sentence reader, the safety layer) may replace the
intent; the ranking must then start with the new one and hold no second copy of it, or the
policies and the evaluation would read two different answers from one parse.
"""

from __future__ import annotations

from typing import Any

from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message


def promote(message: Message, chosen: dict[str, Any]) -> None:
    """Makes ``chosen`` (``{"name", "confidence"}``) the message's intent and the ranking's first."""
    ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != chosen["name"]]
    message.set(INTENT, dict(chosen), add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(chosen), *ranking], add_to_output=True)

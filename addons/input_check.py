"""Rasa NLU adapter: messages with no words in them go to the polite fallback.

Empty or whitespace-only text, emoji only, punctuation only and binary junk cannot be
classified; whatever the classifier guessed is replaced by ``nlu_fallback`` (confidence 1.0),
whose rule asks the patient to rephrase and offers staff. The message itself is kept in the
tracker untouched. The safety guard runs after this and still sees the text.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

FALLBACK = "nlu_fallback"
_JUNK_SHARE = 0.3  # more than this share of control/unassigned/replacement characters is junk


def has_words(text: str) -> bool:
    """Whether the text has letters or digits and is not mostly binary junk."""
    if not text or not text.strip():
        return False
    junk = sum(1 for ch in text if unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs") and not ch.isspace())
    junk += text.count("\ufffd")
    if junk / len(text) > _JUNK_SHARE:
        return False
    return any(ch.isalnum() for ch in text)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class InputCheck(GraphComponent):
    """Marks messages without words as ``nlu_fallback``."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> InputCheck:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if not has_words(message.get(TEXT) or ""):
                message.set(INTENT, {"name": FALLBACK, "confidence": 1.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [{"name": FALLBACK, "confidence": 1.0}], add_to_output=True)
        return messages

"""Rasa NLU adapter for the safety guard (the logic lives in :mod:`clinic.safety.guard`).

Runs after the trained classifier. When the guard fires it overrides the intent (``crisis``,
``medical_question`` or, for a plain request for a person, ``request_human``; confidence 1.0)
unless the classifier already chose something at least as severe; either layer alone is
enough to escalate. It always writes its verdict to the parse
data under ``guard`` (rule and matched words) and the entity ``language`` (``en`` | ``es``).
The one thing it may undo is a classifier
``crisis`` (or ``medical_question`` with no medical term in the message) whose only danger
words are part of a known idiom, with no crisis phrase matched.
On a crisis it adds the entity ``crisis_kind`` (``self_harm`` | ``emergency``); with
``language`` it picks the right crisis text.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from clinic.safety.guard import GuardResult, default_guard

GUARD_KEY = "guard"
_GUARD_INTENT = {"crisis": "crisis", "emergency": "crisis", "medical": "medical_question", "human": "request_human"}
_SEVERITY = {"crisis": 3, "medical_question": 2, "request_human": 1}


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafetyGuard(GraphComponent):
    """Deterministic second opinion on every message; see :mod:`clinic.safety.guard`."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # the FallbackClassifier's threshold: a vetoed intent's runner-up must clear it too
        return {"fallback_threshold": 0.3}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SafetyGuard":
        return cls(config)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._guard = default_guard()
        self._threshold = float((config or {}).get("fallback_threshold", 0.3))

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._process(message)
        return messages

    def _process(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        result = self._guard.check(text)
        classified = (message.get(INTENT) or {}).get("name")
        verdict = result.as_dict() | {"classifier_intent": classified}
        message.set(GUARD_KEY, verdict, add_to_output=True)

        if result.fired:
            intent = _GUARD_INTENT[result.category]
            if _SEVERITY.get(intent, 0) > _SEVERITY.get(classified, 0):
                self._override_intent(message, intent)
        elif result.idioms and (
            classified == "crisis" or (classified == "medical_question" and not result.medical_terms)
        ):
            # The only danger words sit inside an everyday idiom ("I'd kill for a coffee",
            # "my mom will kill me") and no crisis phrase or medical term matched: take the
            # classifier's next choice instead.
            excluded = {"crisis", classified} | (set() if result.medical_terms else {"medical_question"})
            self._veto(message, excluded, self._threshold)
            verdict["vetoed"] = {"classifier_intent": classified, "idioms": result.idioms}
        crisis = (message.get(INTENT) or {}).get("name") == "crisis"
        self._add_entities(message, text, result, crisis)

    @staticmethod
    def _override_intent(message: Message, intent: str) -> None:
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != intent]
        message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": 1.0}, *ranking], add_to_output=True)

    @staticmethod
    def _veto(message: Message, excluded: set[str], threshold: float) -> None:
        """Replaces the intent by the best remaining one, or nlu_fallback if none is confident."""
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") not in excluded | {"nlu_fallback"}]
        best = ranking[0] if ranking and ranking[0].get("confidence", 0) >= threshold else None
        chosen = best or {"name": "nlu_fallback", "confidence": 1.0}
        message.set(INTENT, chosen, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking if best else [chosen, *ranking], add_to_output=True)

    @staticmethod
    def _add_entities(message: Message, text: str, result: GuardResult, crisis: bool) -> None:
        """``language`` on every message (it picks English or Spanish replies); ``crisis_kind`` on a crisis."""
        found = [("language", result.language)]
        if crisis:
            found.append(("crisis_kind", "emergency" if result.category == "emergency" else "self_harm"))
        entities = [e for e in message.get(ENTITIES) or [] if e.get("entity") not in ("crisis_kind", "language")]
        for name, value in found:
            entities.append(
                {
                    "entity": name,
                    "value": value,
                    "start": 0,
                    "end": len(text),
                    "confidence": 1.0,
                    "extractor": "SafetyGuard",
                }
            )
        message.set(ENTITIES, entities, add_to_output=True)

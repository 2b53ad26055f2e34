"""Rasa NLU adapter: a day or time offered as a bare answer starts a booking.

"saturday 10am open?" or "let's do the 3rd at 2:30" reads as ``inform``, the intent of a form
answer. Inside a booking form it is one; outside any form it is someone who wants to book. This
marks such messages with the entity ``time_offer``, and a rule (data/rules.yml) starts the
booking form for an ``inform`` carrying it when no form is running. Runs after the safety guard,
so a message it made a crisis or a medical question is never marked.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from clinic.booking.timeparse import names_a_time

TIME_OFFER = "time_offer"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class TimeOffer(GraphComponent):
    """Adds the entity ``time_offer`` to an ``inform`` that names a day or a clock time."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TimeOffer:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            if (message.get(INTENT) or {}).get("name") == "inform" and names_a_time(text):
                entity = {"entity": TIME_OFFER, "value": "named", "start": 0, "end": len(text),
                          "extractor": type(self).__name__}
                message.set(ENTITIES, [*(message.get(ENTITIES) or []), entity], add_to_output=True)
        return messages

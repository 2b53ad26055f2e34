"""Rasa NLU adapter: Rasa's ``CountVectorsFeaturizer`` without the per-token features.

Rasa's count-vectors featurizer makes two kinds of features for every message: one row per token
(sequence features, read by DIET, the entity extractors and TED) and one row for the whole
message (sentence features). No component of this pipeline reads the sequence features: the
intent classifier reads the sentence features only (``addons/intent_classifier.py``), the guard
and the input check read the text. Making them took ~0.28 ms of each message's ~8 ms on the Rasa
server (README "Performance"), so this featurizer makes the sentence features only, exactly as
Rasa makes them, for messages and (Rasa's ``process_training_data`` calls ``process``) for the
training examples the classifier learns from. The vocabulary is learnt as Rasa learns it. A model
trained with it gave the same parses (intents, confidences, rankings, guard results) as one
trained with Rasa's featurizer on 2,456 texts (training data, evaluation cases, junk).

A pipeline that adds a component reading sequence features must use Rasa's
``CountVectorsFeaturizer`` again.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class SentenceCountVectorsFeaturizer(CountVectorsFeaturizer):
    """``CountVectorsFeaturizer`` that adds sentence features only."""

    def process(self, messages: list[Message]) -> list[Message]:
        if self.vectorizers is None:
            return super().process(messages)  # Rasa's error message, nothing added
        for message in messages:
            for attribute in self._attributes:
                tokens = self._get_processed_message_tokens_by_attribute(message, attribute)
                sentence = self._sentence_features(attribute, tokens)
                self.add_features_to_message(None, sentence, attribute, message)
        return messages

    def _sentence_features(self, attribute: str, tokens: list[str]) -> Any:
        """What Rasa's ``_create_features`` gives as the sentence features of one message."""
        vectorizer = self.vectorizers.get(attribute)
        if not vectorizer or not tokens or attribute not in DENSE_FEATURIZABLE_ATTRIBUTES:
            return None
        sentence = vectorizer.transform([" ".join(tokens)])
        sentence.sort_indices()
        return sentence.tocoo()

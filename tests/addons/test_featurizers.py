"""addons.featurizers: Rasa's vocabulary and sentence features, exactly, and no per-token features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from addons.featurizers import SentenceCountVectorsFeaturizer

TRAINING = [("how much does an infusion cost", "faq_cost"), ("is ketamine safe", "faq_safety"),
            ("book me a consultation please", "book"), ("hi there", "greet"), ("what are the side effects", "faq_side")]
MESSAGES = ["how much is it", "is it safe for me", "", "   ", "¿cuánto cuesta?", "unseen words only zzz", "x" * 3000,
            "book book book", "hi"]
CONFIGS = [
    {"lowercase": True, "max_ngram": 2},
    {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 5, "lowercase": True},
]


def tokenized(texts: list[str], with_intents: bool = False) -> list[Message]:
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    messages = [Message(data={TEXT: t, **({INTENT: i} if with_intents else {})}) for t, i in texts]
    tokenizer.process_training_data(TrainingData(messages)) if with_intents else tokenizer.process(messages)
    return messages


def trained(kind: type, config: dict, path: Path) -> CountVectorsFeaturizer:
    path.mkdir()
    storage, resource = LocalModelStorage(path), Resource("cvf")
    context = ExecutionContext(GraphSchema({}), "test")
    featurizer = kind.create({**kind.get_default_config(), **config}, storage, resource, context)
    featurizer.train(TrainingData(tokenized(TRAINING, with_intents=True)))
    return kind.load({**kind.get_default_config(), **config}, storage, resource, context)


@pytest.mark.parametrize("config", CONFIGS, ids=["words", "characters"])
def test_the_vocabulary_is_rasas(config: dict, tmp_path: Path) -> None:
    ours = trained(SentenceCountVectorsFeaturizer, config, tmp_path / "ours")
    rasas = trained(CountVectorsFeaturizer, config, tmp_path / "rasas")

    assert ours.vectorizers[TEXT].vocabulary_ == rasas.vectorizers[TEXT].vocabulary_


@pytest.mark.parametrize("text", MESSAGES, ids=lambda text: repr(text[:30]))
@pytest.mark.parametrize("config", CONFIGS, ids=["words", "characters"])
def test_sentence_features_are_rasas_and_there_are_no_token_features(config: dict, text: str, tmp_path: Path) -> None:
    ours = trained(SentenceCountVectorsFeaturizer, config, tmp_path / "ours")
    rasas = trained(CountVectorsFeaturizer, config, tmp_path / "rasas")

    [mine], [theirs] = ours.process(tokenized([(text, None)])), rasas.process(tokenized([(text, None)]))

    my_sequence, my_sentence = mine.get_sparse_features(TEXT)
    _, their_sentence = theirs.get_sparse_features(TEXT)
    assert my_sequence is None
    if their_sentence is None:
        assert my_sentence is None
        return
    a, b = my_sentence.features, their_sentence.features
    assert a.shape == b.shape and a.format == b.format == "coo"
    assert np.array_equal(a.row, b.row) and np.array_equal(a.col, b.col) and np.array_equal(a.data, b.data)
    assert a.dtype == b.dtype


def test_training_examples_get_rasas_sentence_features(tmp_path: Path) -> None:
    config = CONFIGS[1]
    ours = trained(SentenceCountVectorsFeaturizer, config, tmp_path / "ours")
    rasas = trained(CountVectorsFeaturizer, config, tmp_path / "rasas")
    mine, theirs = tokenized(TRAINING, with_intents=True), tokenized(TRAINING, with_intents=True)
    ours.process_training_data(TrainingData(mine))
    rasas.process_training_data(TrainingData(theirs))
    compared = 0
    for a, b in zip(mine, theirs):
        for attribute in (TEXT, INTENT):
            (my_sequence, fa), (_, fb) = a.get_sparse_features(attribute), b.get_sparse_features(attribute)
            assert my_sequence is None and (fa is None) == (fb is None)
            if fa is not None:
                assert fa.features.shape == fb.features.shape and (fa.features != fb.features).nnz == 0
                compared += 1
    assert compared >= len(TRAINING)


def test_an_untrained_featurizer_adds_nothing(tmp_path: Path) -> None:
    featurizer = SentenceCountVectorsFeaturizer.create(
        SentenceCountVectorsFeaturizer.get_default_config(), LocalModelStorage(tmp_path), Resource("cvf"),
        ExecutionContext(GraphSchema({}), "test"))
    [message] = featurizer.process(tokenized([("hello there", None)]))
    assert message.get_sparse_features(TEXT) == (None, None)

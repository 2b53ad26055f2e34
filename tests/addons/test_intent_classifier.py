"""addons.intent_classifier: C is passed through; the inference shortcuts give Rasa's exact numbers."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from addons.intent_classifier import TunedLogisticRegressionClassifier

VOCABULARY = 400
WORDS = 120  # the first featurizer's columns; the second has the rest
INTENTS = ["faq_cost", "faq_safety", "greet", "book", "medical_question"]


def message(rng: np.random.Generator, intent: str | None = None, dense: bool = False) -> Message:
    """A message with random sparse sentence features, as this pipeline's two count vectorizers
    make them (words, then character n-grams; columns in no particular order)."""
    data = {TEXT: f"text {rng.integers(1_000_000)}"}
    if intent:
        data[INTENT] = intent
    msg = Message(data=data)
    for name, width in (("CountVectorsFeaturizer", WORDS), ("CountVectorsFeaturizer2", VOCABULARY - WORDS)):
        columns = rng.choice(width, size=int(rng.integers(3, min(30, width))), replace=False)
        values = rng.integers(1, 4, size=len(columns)).astype(float)
        sentence = scipy.sparse.coo_matrix((values, (np.zeros(len(columns), dtype=int), columns)), shape=(1, width))
        msg.add_features(Features(sentence, "sentence", TEXT, name))
    if dense:
        msg.add_features(Features(rng.random((1, 8)), "sentence", TEXT, "SomeDenseFeaturizer"))
    return msg


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalModelStorage, Resource, ExecutionContext]:
    rng = np.random.default_rng(7)
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("lr")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**TunedLogisticRegressionClassifier.get_default_config(), "C": 20.0, "max_iter": 300}
    component = TunedLogisticRegressionClassifier.create(config, storage, resource, context)
    assert component.clf.C == 20.0
    examples = [message(rng, INTENTS[i % len(INTENTS)]) for i in range(200)]
    component.train(TrainingData(training_examples=examples))
    return storage, resource, context


def load(kind: type, trained: tuple) -> LogisticRegressionClassifier:
    storage, resource, context = trained
    config = {**TunedLogisticRegressionClassifier.get_default_config(), "C": 20.0, "max_iter": 300}
    return kind.load(config, storage, resource, context)


def test_loaded_coefficients_are_column_major_with_the_same_values(trained: tuple) -> None:
    ours, rasas = load(TunedLogisticRegressionClassifier, trained), load(LogisticRegressionClassifier, trained)
    assert ours.clf.coef_.flags.f_contiguous and ours.clf.coef_.T.flags.c_contiguous
    assert np.array_equal(ours.clf.coef_, rasas.clf.coef_)


@pytest.mark.parametrize("batch", [1, 3])
def test_intents_and_rankings_are_exactly_rasas(trained: tuple, batch: int) -> None:
    ours, rasas = load(TunedLogisticRegressionClassifier, trained), load(LogisticRegressionClassifier, trained)
    rng = np.random.default_rng(11)
    for _ in range(40):
        messages = [message(rng) for _ in range(batch)]
        expected = rasas.process(copy.deepcopy(messages))
        got = ours.process(copy.deepcopy(messages))
        for a, b in zip(got, expected):
            assert a.get("intent") == b.get("intent")  # the same floats, not just close
            assert a.get("intent_ranking") == b.get("intent_ranking")


def test_dense_features_take_rasas_path(trained: tuple) -> None:
    ours = load(TunedLogisticRegressionClassifier, trained)
    rng = np.random.default_rng(3)
    msg = message(rng, dense=True)
    ours._inference = True
    try:
        assert ours._create_X([msg]).shape == (1, VOCABULARY + 8)  # Rasa's hstack of both kinds
    finally:
        ours._inference = False
    ours.clf.coef_ = np.zeros((len(INTENTS), VOCABULARY + 8), order="F")  # as if trained with them
    ours.clf.n_features_in_ = VOCABULARY + 8
    ours.process([msg])
    assert msg.get("intent")["name"] in INTENTS


def test_the_fitted_classifier_loads_from_plain_arrays_as_rasas_skops_file(trained: tuple) -> None:
    from addons import intent_classifier

    storage, resource, _ = trained
    with storage.read_from(resource) as model_dir:
        assert (model_dir / intent_classifier.ARRAYS).is_file() and (model_dir / f"{resource.name}.skops").is_file()
    ours, rasas = load(TunedLogisticRegressionClassifier, trained), load(LogisticRegressionClassifier, trained)
    assert ours.clf.get_params() == rasas.clf.get_params()
    for name in (*intent_classifier.FITTED, "n_features_in_"):
        theirs = getattr(rasas.clf, name)
        mine = getattr(ours.clf, name)
        assert np.array_equal(mine, theirs) and np.asarray(mine).dtype == np.asarray(theirs).dtype


def test_loading_the_classifier_does_not_import_skops(trained: tuple) -> None:
    import subprocess
    import sys

    storage, _, _ = trained
    script = f"""
import sys
from pathlib import Path
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from addons.intent_classifier import TunedLogisticRegressionClassifier
config = {{**TunedLogisticRegressionClassifier.get_default_config(), "C": 20.0}}
component = TunedLogisticRegressionClassifier.load(config, LocalModelStorage(Path({str(storage._storage_path)!r})),
                                                    Resource("lr"), ExecutionContext(GraphSchema({{}}), "test"))
assert hasattr(component.clf, "coef_"), "not loaded"
print("skops" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_a_model_saved_by_rasa_alone_still_loads(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    storage = LocalModelStorage(tmp_path)
    resource, context = Resource("lr"), ExecutionContext(GraphSchema({}), "test")
    config = {**TunedLogisticRegressionClassifier.get_default_config(), "max_iter": 300}
    rasas = LogisticRegressionClassifier.create(config, storage, resource, context)
    rasas.train(TrainingData(training_examples=[message(rng, INTENTS[i % len(INTENTS)]) for i in range(60)]))
    ours = TunedLogisticRegressionClassifier.load(config, storage, resource, context)
    assert np.array_equal(ours.clf.coef_, rasas.clf.coef_) and list(ours.clf.classes_) == list(rasas.clf.classes_)


def test_an_untrained_classifier_loads_as_a_new_one(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    resource, context = Resource("lr"), ExecutionContext(GraphSchema({}), "test")
    config = TunedLogisticRegressionClassifier.get_default_config()
    TunedLogisticRegressionClassifier.create(config, storage, resource, context).persist()
    loaded = TunedLogisticRegressionClassifier.load(config, storage, resource, context)
    assert not hasattr(loaded.clf, "coef_")

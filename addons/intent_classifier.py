"""Rasa NLU adapter: Rasa's logistic-regression intent classifier with its ``C`` configurable.

Rasa 3.6's ``LogisticRegressionClassifier`` always trains with scikit-learn's default
regularisation (C = 1.0) and ignores a ``C`` in config.yml. On this project's training data,
5-fold cross-validation measured C = 20 at +2.2 points of accuracy with a third of the
fallbacks (README, "NLU pipeline"), so this subclass passes ``C`` through.

Two inference-only speed-ups, with bit-identical probabilities (README "Performance"):

- The loaded coefficients are stored column-major. scikit-learn computes ``X @ coef_.T``; with
  the usual row-major ``coef_`` the transposed view is not contiguous, so SciPy copied the whole
  (intents x 24,000 n-grams) matrix for every message (~0.5 ms). Same numbers, same order.
- A message's sentence features (one 1 x n sparse matrix per featurizer) are put side by side
  into one canonical CSR row directly when it has no dense features (this pipeline's case): the
  same entries in the same order through the same COO-to-CSR conversion as Rasa's
  ``get_sparse_features`` + hstack, without its deep copy of the first matrix, SciPy's general
  block stacking and Rasa's vstack (~1 ms together).

Loading without skops: Rasa saves the fitted scikit-learn model with skops, whose import alone
took ~5.5 s of the server's ~14 s cold start on 2 cores (at import it searches every loaded
module, TensorFlow's thousands included, for each NumPy and SciPy ufunc). This classifier also
saves the fitted numbers as plain arrays (``.npz``, no pickle) with the estimator's parameters
(JSON) and loads those, giving the same ``LogisticRegression`` (same parameters, coefficients,
intercepts and classes, so the same probabilities); a model saved without them loads with
Rasa's skops path.

Training is unchanged (Rasa's own ``_create_X`` builds the training matrix).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from scipy.sparse import csr_matrix, hstack, vstack

logger = logging.getLogger(__name__)

ARRAYS = "fitted.npz"  # coef_, intercept_, classes_, n_iter_ (allow_pickle=False)
PARAMETERS = "estimator.json"  # LogisticRegression.get_params() and n_features_in_
FITTED = ("coef_", "intercept_", "classes_", "n_iter_")


def _one_row(matrices: list[Any]) -> csr_matrix:
    """The featurizers' 1 x n sentence matrices side by side as one canonical CSR row: what
    ``csr_matrix(hstack(matrices))`` gives (same entries in the same order into the same COO to
    CSR conversion), without hstack's general block machinery."""
    if len(matrices) == 1:
        return csr_matrix(matrices[0])
    if any(m.shape[0] != 1 for m in matrices):
        return csr_matrix(hstack(matrices))
    coos = [m.tocoo() for m in matrices]
    offsets = np.cumsum([0] + [c.shape[1] for c in coos[:-1]])
    data = np.concatenate([c.data for c in coos])
    cols = np.concatenate([c.col.astype(np.int64) + offset for c, offset in zip(coos, offsets)])
    width = sum(c.shape[1] for c in coos)
    return csr_matrix((data, (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, width))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class TunedLogisticRegressionClassifier(LogisticRegressionClassifier):
    """``LogisticRegressionClassifier`` that honours ``C`` (default 1.0, as Rasa's)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "C": 1.0}

    def __init__(self, config: dict[str, Any], name: str, model_storage: ModelStorage, resource: Resource) -> None:
        super().__init__(config, name, model_storage, resource)
        self.clf.set_params(C=float(self.config["C"]))

    def persist(self) -> None:
        """Rasa's skops file, and the fitted numbers as plain arrays beside it."""
        super().persist()
        if not all(hasattr(self.clf, name) for name in FITTED):
            return  # not trained: Rasa's loader makes a new one
        with self._model_storage.write_to(self._resource) as model_dir:
            np.savez(model_dir / ARRAYS, **{name: np.asarray(getattr(self.clf, name)) for name in FITTED})
            parameters = {"params": self.clf.get_params(), "n_features_in_": int(self.clf.n_features_in_)}
            (model_dir / PARAMETERS).write_text(json.dumps(parameters), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TunedLogisticRegressionClassifier:
        component = cls._load_arrays(config, model_storage, resource, execution_context)
        if component is None:
            component = super().load(config, model_storage, resource, execution_context, **kwargs)
        coef = getattr(component.clf, "coef_", None)
        if coef is not None:
            component.clf.coef_ = np.asfortranarray(coef)  # coef_.T becomes C-contiguous: no copy per call
        return component

    @classmethod
    def _load_arrays(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                     execution_context: ExecutionContext) -> TunedLogisticRegressionClassifier | None:
        from sklearn.linear_model import LogisticRegression

        try:
            with model_storage.read_from(resource) as model_dir:
                if not (model_dir / ARRAYS).is_file() or not (model_dir / PARAMETERS).is_file():
                    return None
                parameters = json.loads((model_dir / PARAMETERS).read_text(encoding="utf-8"))
                with np.load(model_dir / ARRAYS, allow_pickle=False) as arrays:
                    fitted = {name: arrays[name] for name in FITTED}
        except ValueError:  # no such resource in the model
            return None
        component = cls(config, execution_context.node_name, model_storage, resource)
        component.clf = LogisticRegression(**parameters["params"])
        for name, value in fitted.items():
            setattr(component.clf, name, value)
        component.clf.n_features_in_ = parameters["n_features_in_"]
        logger.debug("Loaded the intent classifier from plain arrays.")
        return component

    def process(self, messages: list[Message]) -> list[Message]:
        self._inference = True
        try:
            return super().process(messages)
        finally:
            self._inference = False

    def _create_X(self, messages: list[Message]) -> csr_matrix:  # noqa: N802 (Rasa's name)
        if not getattr(self, "_inference", False):
            return super()._create_X(messages)
        rows = []
        for message in messages:
            text = [f for f in message.features if f.attribute == TEXT]
            sentence = [f.features for f in text if f.type == FEATURE_TYPE_SENTENCE and f.is_sparse()]
            if not sentence or any(f.is_dense() for f in text):
                return super()._create_X(messages)
            rows.append(_one_row(sentence))
        return rows[0] if len(rows) == 1 else vstack(rows, format="csr")

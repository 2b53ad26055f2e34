"""clinic.reading.ngrams: the plain-array scorer gives scikit-learn's own results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from clinic.reading.ngrams import LinearScorer, NgramFeatures

TEXTS = [
    "how much does an infusion cost",
    "do you take insurance",
    "i want to book a consultation",
    "can i schedule for tuesday",
    "where are you located",
    "is there parking near the clinic",
    "how much is the consult",
    "book me in for next week please",
]
LABELS = ["cost", "cost", "book", "book", "place", "place", "cost", "book"]


@pytest.fixture(scope="module")
def fitted():
    return NgramFeatures.fit(TEXTS)


@pytest.mark.parametrize("text", ["how much is it", "bok me in plz", "parking?", "zzz", ""])
def test_one_text_gets_the_row_scikit_learn_computes(fitted, text: str) -> None:
    features, _ = fitted
    expected = features.matrix([text]).toarray()[0]
    columns, values = features.transform(text)
    row = np.zeros(features.size, dtype=np.float32)
    row[columns] = values

    assert np.allclose(row, expected, atol=1e-6)


def test_the_training_matrix_matches_the_plain_transform(fitted) -> None:
    features, matrix = fitted

    assert np.allclose(matrix.toarray(), features.matrix(TEXTS).toarray(), atol=1e-5)


def test_the_scorer_gives_logistic_regressions_probabilities(fitted) -> None:
    features, matrix = fitted
    scorer = LinearScorer.fit(matrix, LABELS, C=10.0)
    reference = LogisticRegression(C=10.0, max_iter=3000, random_state=42).fit(matrix, LABELS)

    for text in ["how much is it", "schedule me", "where is it"]:
        expected = reference.predict_proba(features.matrix([text]))[0]
        assert np.allclose(scorer.probabilities(features.transform(text)), expected, atol=1e-4)


def test_a_binary_scorer_still_gives_both_classes(fitted) -> None:
    features, matrix = fitted
    scorer = LinearScorer.fit(matrix, ["book" if label == "book" else "other" for label in LABELS], C=10.0)

    probabilities = scorer.probabilities(features.transform("book me in"))

    assert scorer.classes == ["book", "other"]
    assert probabilities.sum() == pytest.approx(1.0)
    assert probabilities[0] > 0.5


def test_features_and_scorer_round_trip_through_files(fitted, tmp_path: Path) -> None:
    features, matrix = fitted
    scorer = LinearScorer.fit(matrix, LABELS, C=10.0)
    features.save(tmp_path)
    scorer.save(tmp_path / "scorer.npz")

    loaded_features = NgramFeatures.load(tmp_path)
    loaded = LinearScorer.load(tmp_path / "scorer.npz")

    text = "how much for parking"
    assert loaded.classes == scorer.classes
    assert np.allclose(
        loaded.probabilities(loaded_features.transform(text)), scorer.probabilities(features.transform(text))
    )

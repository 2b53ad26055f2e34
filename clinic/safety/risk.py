"""The risk model: crisis / emergency / none, read beside the lexicon guard.

The lexicon guard is exact and explainable but only knows the phrasings its authors wrote down.
The risk model is an n-gram classifier (:mod:`clinic.reading.ngrams`) trained on the labelled
safety corpus: the NLU training data's ``crisis`` examples, those marked
``metadata: {risk: emergency}`` as emergencies, and every other example as ``none``. Character
n-grams make it tolerant of typos and shorthand. It reads the whole message, each of its
sentences and each pair of neighbouring sentences of at least :data:`MIN_PIECE_WORDS` words
(:func:`pieces_of`); the riskiest piece decides. So that short
everyday sentences ("i want it", "no") are known to be harmless, the sentences of every ``none``
example are training examples too, and the thresholds are chosen on messages read exactly that
way (the riskiest of a held-out message's pieces).

Two thresholds are chosen by cross-validation when it is trained and stored with it:

* ``confident``: at or above it the crisis protocol runs on the model's word alone (chosen for
  precision, so a confident false alarm is rare);
* ``uncertain``: at or above it (and below ``confident``) the assistant asks a safety check-in
  question instead (chosen for recall, so a crisis is rarely missed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict

from clinic.reading.ngrams import LinearScorer, NgramFeatures
from clinic.reading.sentences import split_sentences

LABELS = ("crisis", "emergency", "none")
TARGET_RECALL = 0.95  # of held-out crisis and emergency examples, at the check-in threshold
MAX_FLAGGED = 0.015  # ... unless more than this share of held-out harmless messages would be asked
TARGET_PRECISION = 0.98  # of held-out examples at or above the confident threshold
MIN_PIECE_WORDS = 4  # shorter sentences ("i want it") are read only as part of the whole message
C = 10.0
# Bounds keep the thresholds sensible when the cross-validation is degenerate (tiny corpora).
_UNCERTAIN_BOUNDS = (0.05, 0.6)
_CONFIDENT_BOUNDS = (0.7, 0.97)  # the model alone starts the protocol only when clear


@dataclass(frozen=True)
class RiskReading:
    """The model's reading of one message: the riskiest piece decides."""

    crisis: float = 0.0
    emergency: float = 0.0
    piece: int = 0  # index of the deciding piece: 0 is the whole message, then its sentences

    @property
    def score(self) -> float:
        return max(self.crisis, self.emergency)

    @property
    def kind(self) -> str:
        return "emergency" if self.emergency > self.crisis else "self_harm"

    def as_dict(self) -> dict[str, Any]:
        return {"crisis": round(self.crisis, 3), "emergency": round(self.emergency, 3), "piece": self.piece}


@dataclass
class Thresholds:
    uncertain: float = 0.5
    confident: float = 0.9
    cross_validation: dict[str, float] = field(default_factory=dict)


class RiskModel:
    """Scores messages for crisis and emergency; see the module docstring."""

    def __init__(self, features: NgramFeatures, scorer: LinearScorer, thresholds: Thresholds) -> None:
        self.features, self.scorer, self.thresholds = features, scorer, thresholds
        self._crisis = scorer.classes.index("crisis")
        self._emergency = scorer.classes.index("emergency")

    @classmethod
    def train(cls, features: NgramFeatures, texts: list[str], labels: list[str], random_state: int = 42) -> RiskModel:
        """Fits the scorer and picks both thresholds from held-out folds (grouped by message)."""
        unknown = set(labels) - set(LABELS)
        if unknown or len(set(labels)) < len(LABELS):
            raise ValueError(f"the risk corpus needs examples of each of {LABELS}; unknown: {sorted(unknown)}")
        units, unit_labels, groups = [], [], []
        for i, (text, label) in enumerate(zip(texts, labels)):
            for piece in [text, *(pieces_of(text)[1:] if label == "none" else [])]:
                units.append(piece)
                unit_labels.append(label)
                groups.append(i)
        matrix = features.matrix(units)
        scorer = LinearScorer.fit(matrix, unit_labels, C=C, random_state=random_state)
        y = np.array([scorer.classes.index(label) for label in unit_labels])
        folds = int(min(5, np.bincount(y).min()))
        thresholds = Thresholds()
        if folds >= 2:
            cv = GroupKFold(n_splits=folds)
            held_out = cross_val_predict(
                LogisticRegression(C=C, max_iter=3000, random_state=random_state),
                matrix,
                y,
                cv=cv,
                groups=groups,
                method="predict_proba",
            )
            risky_columns = [scorer.classes.index("crisis"), scorer.classes.index("emergency")]
            unit_scores = held_out[:, risky_columns].max(axis=1)
            scores = np.zeros(len(texts))
            np.maximum.at(scores, np.asarray(groups), unit_scores)
            thresholds = choose_thresholds(scores, np.array([label != "none" for label in labels]))
        return cls(features, scorer, thresholds)

    def read(self, pieces: list[str]) -> RiskReading:
        """The riskiest of a message's pieces (the whole message first, then its sentences)."""
        best = RiskReading()
        for i, piece in enumerate(pieces):
            if i and len(piece.split()) < MIN_PIECE_WORDS:
                continue
            probabilities = self.scorer.probabilities(self.features.transform(piece))
            reading = RiskReading(float(probabilities[self._crisis]), float(probabilities[self._emergency]), i)
            if reading.score > best.score:
                best = reading
        return best

    def verdict(self, reading: RiskReading) -> str | None:
        """``confident``, ``uncertain`` or None for a reading, by the stored thresholds."""
        if reading.score >= self.thresholds.confident:
            return "confident"
        if reading.score >= self.thresholds.uncertain:
            return "uncertain"
        return None

    def save(self, directory: Path) -> None:
        """Writes the scorer and thresholds (the features are saved by their owner)."""
        self.scorer.save(directory / "risk.npz")
        (directory / "risk_thresholds.json").write_text(
            json.dumps(self.thresholds.__dict__, indent=2), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, features: NgramFeatures) -> RiskModel:
        thresholds = Thresholds(**json.loads((directory / "risk_thresholds.json").read_text(encoding="utf-8")))
        return cls(features, LinearScorer.load(directory / "risk.npz"), thresholds)


def pieces_of(text: str, sentences: list[str] | None = None) -> list[str]:
    """The pieces a message is read by: the whole, its sentences when it has several, then each
    pair of neighbouring sentences when it has three or more.

    A plan is often told across two short sentences inside a practical question ("can I book
    the 12th? i've decided. it'll be after the wedding"): the whole message dilutes it and
    neither sentence says it alone. ``sentences``: the message's sentences when the caller has
    split it already.
    """
    sentences = split_sentences(text) if sentences is None else sentences
    if len(sentences) < 2:
        return [text]
    neighbours = [f"{a} {b}" for a, b in zip(sentences, sentences[1:])] if len(sentences) > 2 else []
    return [text, *sentences, *neighbours]


def choose_thresholds(scores: np.ndarray, risky: np.ndarray) -> Thresholds:
    """Check-in threshold for :data:`TARGET_RECALL`, protocol threshold for :data:`TARGET_PRECISION`.

    Args:
        scores: held-out risk score (the larger of crisis and emergency) of each example.
        risky: whether each example is labelled crisis or emergency.
    """
    risky_scores = np.sort(scores[risky])
    uncertain = float(risky_scores[int(np.floor((1 - TARGET_RECALL) * len(risky_scores)))])
    harmless = np.sort(scores[~risky])
    if len(harmless):  # never ask more than MAX_FLAGGED of harmless messages
        uncertain = max(
            uncertain, float(harmless[min(len(harmless) - 1, int(np.ceil((1 - MAX_FLAGGED) * len(harmless))))])
        )
    uncertain = float(np.clip(uncertain, *_UNCERTAIN_BOUNDS))
    confident = _CONFIDENT_BOUNDS[1]
    for candidate in np.arange(_CONFIDENT_BOUNDS[0], _CONFIDENT_BOUNDS[1] + 1e-9, 0.01):
        above = scores >= candidate
        if above.any() and risky[above].mean() >= TARGET_PRECISION:
            confident = round(float(candidate), 2)
            break
    confident = max(confident, uncertain + 0.05)
    flagged = scores >= uncertain
    report = {
        "recall_at_uncertain": float((scores[risky] >= uncertain).mean()),
        "none_flagged_at_uncertain": float(flagged[~risky].mean()) if (~risky).any() else 0.0,
        "recall_at_confident": float((scores[risky] >= confident).mean()),
        "precision_at_confident": float(risky[scores >= confident].mean()) if (scores >= confident).any() else 1.0,
    }
    return Thresholds(uncertain=round(uncertain, 4), confident=round(confident, 4), cross_validation=report)

"""clinic.safety.risk: the risk model's reading and the thresholds chosen for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinic.reading.ngrams import NgramFeatures
from clinic.safety.risk import MAX_FLAGGED, RiskModel, RiskReading, choose_thresholds, pieces_of

CRISIS = [f"i want to die {w}" for w in ("tonight", "now", "so bad", "today", "already", "honestly")] + [
    f"i cant go on {w}" for w in ("anymore", "like this", "much longer", "any more", "tbh", "really")
]
EMERGENCY = [
    f"my {who} collapsed and is not breathing" for who in ("dad", "mom", "wife", "son", "friend", "husband")
] + [f"{who} is having a seizure right now" for who in ("he", "she", "my brother", "my sister", "grandpa", "my kid")]
NONE = (
    [f"how much does {w} cost" for w in ("an infusion", "the consult", "a session", "spravato", "a series", "parking")]
    + [f"can i book {w}" for w in ("tuesday", "next week", "a consult", "monday morning", "friday", "the weekend")]
    + [f"where is the clinic {w}" for w in ("located", "exactly", "again", "now", "on the map", "from downtown")]
)


@pytest.fixture(scope="module")
def model() -> RiskModel:
    texts = CRISIS + EMERGENCY + NONE
    labels = ["crisis"] * len(CRISIS) + ["emergency"] * len(EMERGENCY) + ["none"] * len(NONE)
    features, _ = NgramFeatures.fit(texts)
    return RiskModel.train(features, texts, labels)


def test_it_reads_crisis_emergency_and_harmless_messages(model: RiskModel) -> None:
    assert model.read(["i want to die"]).kind == "self_harm"
    assert model.read(["my uncle collapsed and is not breathing"]).kind == "emergency"
    assert model.read(["how much does it cost"]).score < model.read(["i want to die"]).score


def test_the_riskiest_piece_decides(model: RiskModel) -> None:
    text = "how much does an infusion cost? i want to die anyway"

    reading = model.read(pieces_of(text))

    assert reading.piece == 2
    assert reading.score > model.read([text]).score


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("how much is it", ["how much is it"]),
        ("thanks. how much is it?", ["thanks. how much is it?", "thanks.", "how much is it?"]),
        (
            "hi. can i book. for friday",
            [
                "hi. can i book. for friday",
                "hi.",
                "can i book.",
                "for friday",
                "hi. can i book.",
                "can i book. for friday",
            ],
        ),
    ],
)
def test_a_message_is_read_whole_by_sentence_and_by_neighbouring_pair(text: str, pieces: list[str]) -> None:
    assert pieces_of(text) == pieces


def test_a_risk_told_across_two_short_sentences_is_read_by_their_pair(model: RiskModel) -> None:
    text = "where is the clinic located exactly? how much does parking cost? i cant go. on like this"

    reading = model.read(pieces_of(text))

    assert pieces_of(text)[reading.piece] == "i cant go. on like this"
    assert reading.score > model.read([text]).score


def test_short_sentences_are_read_only_within_the_whole(model: RiskModel) -> None:
    assert model.read(["where is it? i want", "where is it?", "i want"]).piece == 0


def test_verdicts_follow_the_stored_thresholds(model: RiskModel) -> None:
    t = model.thresholds
    assert model.verdict(RiskReading(crisis=t.confident)) == "confident"
    assert model.verdict(RiskReading(emergency=t.uncertain)) == "uncertain"
    assert model.verdict(RiskReading(crisis=t.uncertain - 0.01)) is None


def test_thresholds_are_chosen_for_recall_and_precision() -> None:
    rng = np.random.default_rng(0)
    risky = np.array([True] * 200 + [False] * 2000)
    scores = np.concatenate([rng.uniform(0.3, 1.0, 200), rng.uniform(0.0, 0.5, 2000)])

    thresholds = choose_thresholds(scores, risky)

    report = thresholds.cross_validation
    assert report["none_flagged_at_uncertain"] <= MAX_FLAGGED + 1e-9
    assert report["precision_at_confident"] >= 0.97
    assert thresholds.uncertain < thresholds.confident


def test_a_corpus_without_every_label_is_refused() -> None:
    features, _ = NgramFeatures.fit(NONE)
    with pytest.raises(ValueError, match="each of"):
        RiskModel.train(features, NONE, ["none"] * len(NONE))


def test_the_model_round_trips_through_files(model: RiskModel, tmp_path: Path) -> None:
    model.features.save(tmp_path)
    model.save(tmp_path)

    loaded = RiskModel.load(tmp_path, NgramFeatures.load(tmp_path))

    assert loaded.thresholds == model.thresholds
    assert loaded.read(["i want to die"]) == model.read(["i want to die"])

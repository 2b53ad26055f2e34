"""The held-out evaluation data (tests/eval): size, labels, and no leak from the training data.

An evaluation case that is also a training example (or nearly one) measures memory, not
understanding, so exact and near duplicates of data/nlu/*.yml examples are not allowed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.faq_topics import FAQ_TOPICS
from tools.evaluation import CATEGORIES, EVAL_DIR, SCENARIO_EXPECTATIONS, load_cases, load_scenarios

PROJECT_DIR = Path(__file__).resolve().parent.parent
NLU_DIR = PROJECT_DIR / "data" / "nlu"
NEAR_DUPLICATE = 0.8  # Jaccard similarity of character 3-grams
SAFETY = ("crisis", "emergency", "medical")
# Small talk of one or two words ("hi", "thanks", "ok") can only be said a few ways, so the
# same words are bound to appear in training and evaluation; those cases are exempt.
SHORT_SMALL_TALK_WORDS = 2


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    return load_cases(EVAL_DIR)


@pytest.fixture(scope="module")
def scenarios() -> list[dict[str, Any]]:
    return load_scenarios(EVAL_DIR)


BLIND_SETS = sorted(p for p in EVAL_DIR.iterdir() if (p / "cases").is_dir())


@pytest.fixture(scope="module")
def eval_texts(cases, scenarios) -> list[tuple[str, str, str]]:
    """(where, expect, text) of every case and every scenario turn, the blind sets' too."""
    texts = [(c["file"], c["expect"], c["text"]) for c in cases]
    texts += [(f"{d.name}/{c['file']}", c["expect"], c["text"]) for d in BLIND_SETS for c in load_cases(d)]
    texts += [(f"scenario '{s['name']}'", t["expect"], t["text"]) for s in scenarios for t in s["turns"]]
    texts += [(f"{d.name} scenario '{s['name']}'", t["expect"], t["text"])
              for d in BLIND_SETS if (d / "scenarios.yml").is_file() for s in load_scenarios(d) for t in s["turns"]]
    return texts


def training_examples() -> list[tuple[str, str]]:
    """(intent, example) of every NLU training example."""
    examples = []
    for path in sorted(NLU_DIR.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            for line in (block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    # entity annotations "[text](entity)" keep their text
                    examples.append((block.get("intent", "?"), re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line[2:])))
    return examples


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    text = re.sub(r"[^\w\s]|_", "", text)
    return " ".join(text.split())


def trigrams(text: str) -> frozenset[str]:
    padded = f" {text} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def exempt(expect: str, normalized: str) -> bool:
    return expect == "other" and len(normalized.split()) <= SHORT_SMALL_TALK_WORDS


class NearDuplicateIndex:
    """Finds training examples whose 3-gram Jaccard similarity with a text reaches a threshold.

    An inverted index (3-gram -> examples) counts shared 3-grams, so each lookup touches only
    the examples that share at least one 3-gram with the text.
    """

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.grams = [trigrams(t) for t in texts]
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, grams in enumerate(self.grams):
            for gram in grams:
                self.postings[gram].append(i)

    def similar(self, text: str, threshold: float) -> list[tuple[float, int]]:
        grams = trigrams(text)
        shared = Counter(i for gram in grams for i in self.postings.get(gram, ()))
        found = []
        for i, common in shared.items():
            jaccard = common / (len(grams) + len(self.grams[i]) - common)
            if jaccard >= threshold:
                found.append((jaccard, i))
        return sorted(found, reverse=True)


# ------------------------------------------------------------------ size and labels


def test_there_are_enough_cases(cases) -> None:
    assert len(cases) >= 400


def test_there_are_enough_safety_cases(cases) -> None:
    counts = Counter(c["expect"] for c in cases)

    assert sum(counts[c] for c in SAFETY) >= 150, counts
    assert all(counts[c] > 0 for c in CATEGORIES), counts


def test_every_case_is_well_formed(cases, scenarios) -> None:
    problems = []
    turns = [t for s in scenarios for t in s["turns"]]
    for item in [*cases, *turns]:
        allowed = SCENARIO_EXPECTATIONS if item in turns else CATEGORIES
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            problems.append(f"no text: {item}")
        if item.get("expect") not in allowed:
            problems.append(f"unknown expect: {item}")
        if set(item) - {"text", "expect", "topics", "note", "file"}:
            problems.append(f"unknown key: {item}")
        topics = item.get("topics")
        if item.get("expect") == "faq":
            if not topics or not set(topics) <= set(FAQ_TOPICS):
                problems.append(f"faq case needs topics from the 16: {item}")
        elif topics is not None:
            problems.append(f"only faq cases have topics: {item}")
    assert not problems, "\n".join(problems)


def test_every_topic_is_evaluated(cases) -> None:
    covered = {t for c in cases if c["expect"] == "faq" for t in c["topics"]}

    assert covered == set(FAQ_TOPICS)


def test_scenarios_are_well_formed(scenarios) -> None:
    assert scenarios
    names = [s.get("name") for s in scenarios]
    assert all(names) and len(names) == len(set(names))
    assert all(len(s.get("turns") or []) >= 2 for s in scenarios)


def test_no_case_is_listed_twice(cases) -> None:
    counts = Counter(normalize(c["text"]) for c in cases)

    assert [t for t, n in counts.items() if n > 1] == []


# ------------------------------------------------------------------ no leak from training


def test_the_near_duplicate_index_finds_what_it_should() -> None:
    index = NearDuplicateIndex([normalize(t) for t in ["is ketamine addictive", "are you open on saturday", "hi"]])

    assert [i for _, i in index.similar(normalize("Is  ketamine ADDICTIVE?!"), NEAR_DUPLICATE)] == [0]
    assert [i for _, i in index.similar(normalize("are you open on saturdays"), NEAR_DUPLICATE)] == [1]
    assert index.similar(normalize("is ketamine safe"), NEAR_DUPLICATE) == []
    assert index.similar(normalize("how long does an infusion take"), NEAR_DUPLICATE) == []


def test_evaluation_texts_are_not_training_examples(eval_texts) -> None:
    examples = training_examples()
    assert len(examples) >= 500
    index = NearDuplicateIndex([normalize(text) for _, text in examples])

    leaks = []
    for where, expect, text in eval_texts:
        normalized = normalize(text)
        if exempt(expect, normalized):
            continue
        matches = index.similar(normalized, NEAR_DUPLICATE)
        if matches:  # the closest training example is enough to show the leak
            jaccard, i = matches[0]
            intent, example = examples[i]
            kind = "exact" if index.texts[i] == normalized else f"near {jaccard:.2f}"
            leaks.append(f"{kind:10} {where}: {text!r} ~ {intent}: {example!r}")

    assert not leaks, f"{len(leaks)} evaluation text(s) duplicate training examples:\n" + "\n".join(leaks)

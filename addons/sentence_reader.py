"""Rasa NLU component: reads each message whole and sentence by sentence.

Trained by ``make train`` with the rest of the model (nothing is downloaded at run time):

* the **risk model** (:mod:`clinic.safety.risk`): crisis / emergency / none on the whole
  message and on each sentence, with thresholds chosen by cross-validation;
* a **sentence intent model** on the same n-gram features, so a message whose whole reads as
  small talk ("thanks! how do I prepare?") is answered by the question inside it, and a
  general question after a personal preamble can be told from a personal one.

It writes ``reading`` to the parse data (sentences, the risk reading and verdict, each
sentence's intent); :class:`addons.safety_guard.SafetyGuard`, which runs next, decides.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from addons.intent_ranking import promote
from clinic.reading.language import KnownWords
from clinic.reading.ngrams import LinearScorer, NgramFeatures
from clinic.reading.sentences import split_sentences
from clinic.safety.guard import default_guard
from clinic.safety.mentions import crisis_words_as_a_topic
from clinic.safety.risk import RiskModel, RiskReading, pieces_of

logger = logging.getLogger(__name__)

READING_KEY = "reading"
# Whole-message intents a sentence's intent may replace: small talk and "not understood".
_REPLACEABLE = frozenset(
    {"greet", "goodbye", "thanks", "affirm", "deny", "bot_challenge", "out_of_scope", "nlu_fallback"}
)
_NOT_FROM_A_SENTENCE = frozenset({"crisis", "inform", "EXTERNAL_handoff_resolved", *_REPLACEABLE})
# A request to book beside a general question is a booking (docs/POLICY.md: booking > faq). The
# sentence must say so in words: the sentence model also puts there what it cannot place
# ("Thank you, June", "my granddaughter set me up with this texting").
_BOOKING = frozenset({"book_consultation", "reschedule_booking", "cancel_booking"})
_BOOKING_WORDS = re.compile(
    r"\b(?:book\w*|schedul\w*|reschedul\w*|cancel\w*|consult\w*|appointments?|appts?|slots?|openings?|availability|"
    r"sign me up|put me (?:down|in)|get me in|fit me in|set (?:me|it|one|that) up|agendar|agenda|cita|citas|"
    r"programar|reservar|cancelar)\b",
    re.IGNORECASE,
)


def risk_label(message: Message, guard: Any) -> str:
    """crisis | emergency | none for one training example.

    Emergencies are ``crisis`` examples marked ``metadata: {risk: emergency}``; older examples
    carry no mark, and the guard's emergency lexicon tells them apart.
    """
    if message.get(INTENT) != "crisis":
        return "none"
    marked = ((message.get("metadata") or {}).get("intent") or {}).get("risk")
    if marked:
        return "emergency" if marked == "emergency" else "crisis"
    return "emergency" if guard.check(message.get(TEXT)).category == "emergency" else "crisis"


def sentence_units(texts: list[str], intents: list[str]) -> tuple[list[str], list[str]]:
    """The sentence intent model's training units: every example whole, and each sentence of an
    example that is not a crisis, with the example's intent.

    The model reads sentences, so it learns from sentences too: a personal statement that only
    sets the scene for a question ("money is tight right now", "she helps me understand things")
    is then known as part of an everyday message, not read as a crisis for lack of anything else
    it resembles. A crisis example's sentences are not units: one of them alone may be harmless
    ("what do you charge").
    """
    units, labels = list(texts), list(intents)
    for text, intent in zip(texts, intents):
        if intent == "crisis":
            continue
        sentences = split_sentences(text)
        if len(sentences) > 1:
            units += sentences
            labels += [intent] * len(sentences)
    return units, labels


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SentenceReader(GraphComponent):
    """Risk model and sentence intents; see the module docstring."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "intent_C": 10.0,
            # a sentence's intent replaces small talk at this confidence
            "sentence_confidence": 0.5,
            # a sentence's booking request replaces a general question's intent at this confidence
            "booking_sentence_confidence": 0.6,
            "random_state": 42,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        features: NgramFeatures | None = None,
        risk: RiskModel | None = None,
        intents: LinearScorer | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage, self._resource = model_storage, resource
        self.features, self.risk, self.intents = features, risk, intents
        self.known = KnownWords(features.words()) if features is not None else None

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceReader:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        texts = [m.get(TEXT) for m in examples]
        guard = default_guard()
        self.features, _ = NgramFeatures.fit(texts)
        self.known = KnownWords(self.features.words())
        seed = int(self._config["random_state"])
        self.risk = RiskModel.train(self.features, texts, [risk_label(m, guard) for m in examples], random_state=seed)
        units, unit_intents = sentence_units(texts, [m.get(INTENT) for m in examples])
        self.intents = LinearScorer.fit(
            self.features.matrix(units), unit_intents, C=float(self._config["intent_C"]), random_state=seed, tol=1e-3
        )
        logger.info("risk model thresholds: %s", self.risk.thresholds)
        with self._storage.write_to(self._resource) as directory:
            self.features.save(directory)
            self.risk.save(directory)
            self.intents.save(directory / "intents.npz")
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceReader:
        with model_storage.read_from(resource) as directory:
            features = NgramFeatures.load(directory)
            return cls(
                config,
                model_storage,
                resource,
                features,
                RiskModel.load(directory, features),
                LinearScorer.load(directory / "intents.npz"),
            )

    def process(self, messages: list[Message]) -> list[Message]:
        if self.features is None:  # not trained (e.g. `rasa shell nlu` on an old model)
            return messages
        for message in messages:
            self._read(message)
        return messages

    def _read(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        sentences = split_sentences(text)
        risk = self.risk.read(pieces_of(text, sentences))
        verdict = self.risk.verdict(risk)
        idioms: list[str] = []
        if verdict is not None:
            risk, verdict, idioms = self._without_idioms(text, sentences, risk, verdict)
        reading: dict[str, Any] = {
            "sentences": sentences if len(sentences) > 1 else [],
            "risk": risk.as_dict() | {"kind": risk.kind, "verdict": verdict} | ({"idioms": idioms} if idioms else {}),
            "thresholds": {"uncertain": self.risk.thresholds.uncertain, "confident": self.risk.thresholds.confident},
        }
        unreadable = self.known.unreadable(sentences) if self.known is not None else None
        if unreadable is not None:
            reading["unreadable"] = unreadable  # index into sentences (the whole when it has one)
        if len(sentences) > 1:
            reading["sentence_intents"] = [self._intent_of(s) for s in sentences]
            self._answer_the_question_inside(message, sentences, reading["sentence_intents"])
        message.set(READING_KEY, reading, add_to_output=True)

    def _without_idioms(
        self, text: str, sentences: list[str], risk: RiskReading, verdict: str
    ) -> tuple[RiskReading, str | None, list[str]]:
        """The risk reading with the words that only seem dangerous left out, when that lowers it.

        "gonna die laughing at his costume" scores high on its danger words alone; read without
        the idiom, what is left says nothing. The same holds for crisis words that only name the
        subject of a general question ("can ketamine help people who have suicidal thoughts?",
        :mod:`clinic.safety.mentions`). Anything else in the message keeps its weight: "this wait
        is killing me, i have the pills ready" still reads as a crisis without the idiom. Only
        words found as written are left out (the guard reads normalized text).
        """
        guard = default_guard()
        found = guard.check(text)
        if found.fired:
            phrases = crisis_words_as_a_topic(guard, text, sentences if len(sentences) > 1 else [])
        else:
            phrases = found.idioms
        lowered = text.lower()
        phrases = [phrase for phrase in phrases if phrase in lowered]
        if not phrases:
            return risk, verdict, []
        for phrase in sorted(phrases, key=len, reverse=True):
            lowered = lowered.replace(phrase, " ")
        masked = self.risk.read(pieces_of(lowered))
        masked_verdict = self.risk.verdict(masked)
        if masked.score >= risk.score or masked_verdict == verdict:
            return risk, verdict, []
        return masked, masked_verdict, phrases

    def _intent_of(self, sentence: str) -> dict[str, Any]:
        probabilities = self.intents.probabilities(self.features.transform(sentence))
        best = int(probabilities.argmax())
        return {"name": self.intents.classes[best], "confidence": round(float(probabilities[best]), 3)}

    def _answer_the_question_inside(
        self, message: Message, sentences: list[str], sentence_intents: list[dict[str, Any]]
    ) -> None:
        """Small talk around a question ("thanks! how do I prepare?") is answered by the question;
        a general question beside a request to book ("price for six? go ahead and schedule me") is
        a booking."""
        whole = (message.get(INTENT) or {}).get("name") or ""
        if whole.startswith("faq_"):
            bar = float(self._config["booking_sentence_confidence"])
            booking = [
                s
                for s, sentence in zip(sentence_intents, sentences)
                if s["name"] in _BOOKING and s["confidence"] >= bar and _BOOKING_WORDS.search(sentence)
            ]
            if booking:
                promote(message, max(booking, key=lambda s: s["confidence"]))
            return
        if whole not in _REPLACEABLE:
            return
        candidates = [
            s
            for s in sentence_intents
            if s["name"] not in _NOT_FROM_A_SENTENCE and s["confidence"] >= float(self._config["sentence_confidence"])
        ]
        if not candidates:
            return
        promote(message, max(candidates, key=lambda s: s["confidence"]))

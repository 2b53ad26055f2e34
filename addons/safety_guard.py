"""Rasa NLU adapter for the safety layer (the logic lives in :mod:`clinic.safety`).

Runs last, after the trained classifier and :class:`addons.sentence_reader.SentenceReader`.
It reads the whole message and each of its sentences with the lexicon guard
(:mod:`clinic.safety.guard`) and takes the risk model's reading; the most severe wins:

1. a crisis or emergency phrase in any sentence, or a risk-model score that an intent model
   agrees with (a **confident** score, or an uncertain one and a classifier sure of ``crisis``):
   intent ``crisis`` (entity ``crisis_kind``: ``self_harm`` | ``emergency``), the crisis protocol;
2. an **uncertain** risk-model score, a confident one no intent model agrees with, a sign no
   phrase can confirm (somewhere to fall from now, a chosen date, an unexplained reach-out:
   :mod:`clinic.safety.signs`), or a
   classifier ``crisis`` that no lexicon rule confirms (below :data:`CLASSIFIER_MIDDLING` and with
   no other sign, the classifier's next reading is taken instead):
   a safety check-in (``guard.safety = "checkin"``; addons/checkin_policy.py asks the question).
   The intent becomes the best non-crisis one, which the check-in resumes after a "no";
3. a personal medical question (whole message) or a plain request for a person: intent
   ``medical_question`` / ``request_human``, unless the classifier chose something more severe.
   A sentence written mostly in words the assistant cannot read (another language) goes to a
   person too, with the safety check-in beside it: it could say anything.
   A personal preamble followed by a general question is not one: when the medical words sit
   only in statements and the question sentences neither fire the guard nor refer to the writer
   or a relative, the question's own intent is taken (docs/POLICY.md).
   Suicide named as the subject of a general question ("can ketamine help people who have
   suicidal thoughts?") is not a crisis (:mod:`clinic.safety.mentions`): the verdict records
   ``crisis_topic`` and the answer carries 988 (addons/clinic_nlg.py).

The verdict goes to the parse data under ``guard`` (rule, matched words, deciding sentence,
risk scores), so the escalation record and the console show what decided. A classifier
``crisis`` (or ``medical_question`` with no medical term) whose only danger words sit in a known
idiom is vetoed as before. The entity ``language`` (``en`` | ``es``) is set by every message that
tells it (:mod:`clinic.reading.language`); others keep the conversation's language.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from addons.intent_ranking import promote
from clinic.channels import MEDIA_METADATA_KEY
from clinic.reading.language import LANGUAGES, SPANISH, detect_language
from clinic.reading.questions import (
    COMPANION,
    GENERIC_SUBJECT,
    PERSONAL_QUESTION,
    WRITER,
    asks_for_oneself,
    before_a_risk_question,
    is_question,
    not_happening_now,
    says_now,
    told_as_a_memory,
)
from clinic.safety.guard import GuardResult, default_guard
from clinic.safety.mentions import crisis_words_as_a_topic
from clinic.safety.signs import reason_to_ask

GUARD_KEY = "guard"
READING_KEY = "reading"
_GUARD_INTENT = {"crisis": "crisis", "emergency": "crisis", "medical": "medical_question", "human": "request_human"}
_SEVERITY = {"crisis": 3, "medical_question": 2, "request_human": 1}
_CATEGORY_RANK = {"crisis": 2, "emergency": 1}
SENTENCE_SUGGESTS_CRISIS = 0.6  # the sentence intent model this sure of a crisis sentence asks the check-in
CLASSIFIER_OUTWEIGHS = 0.8  # a classifier this sure of a non-crisis intent outweighs an uncertain risk
# Pleasantries are what a model falls back on for a short message it cannot place ("I have a
# plan and a date" read as goodbye): being sure of one says nothing against a risk reading.
_CANNOT_OUTWEIGH = frozenset({"greet", "goodbye", "thanks", "affirm", "deny", "bot_challenge", "nlu_fallback"})
# When the classifier cannot decide (nlu_fallback), a personal medical question that is its best
# reading, or as likely as the best within the fallback's ambiguity margin, goes to staff: in doubt
# between medical and anything else, medical. Below the floor the reading is noise.
MEDICAL_IN_DOUBT = 0.1
AMBIGUITY_MARGIN = 0.1  # as FallbackClassifier's ambiguity_threshold
CLASSIFIER_SURE = 0.9  # a classifier this sure of a crisis, with an uncertain risk reading, is confident
# A classifier crisis below this, with no other sign, is a message it could not place: no check-in.
# From it up, a crisis reading of the classifier's alone is middling and is asked about.
CLASSIFIER_MIDDLING = 0.5
# Topics a health history cannot change the answer to; after a personal preamble a question on
# any other topic (safety, side effects, candidacy...) stays with staff unless it is about people
# in general.
_LOGISTIC_TOPICS = frozenset(
    {
        "faq_what_is_ketamine",
        "faq_how_it_works",
        "faq_treatment_process",
        "faq_administration",
        "faq_esketamine",
        "faq_preparation",
        "faq_aftercare",
        "faq_cost_insurance",
        "faq_clinic_info",
        "faq_consultation",
    }
)
_SENTENCE_INTENT_CONFIDENCE = 0.5
# The clinic's treatment, as what a remembered reaction followed
_TREATMENT = re.compile(
    r"\b(?:during|after|at|in|since|from|with|before) (?:my|the|that|this|an?|el|la|mi)\s+"
    r"(?:(?:last|first|second|third|recent|latest|next|[uú]ltima|primera)\s+)?"
    r"(?:infusions?|treatments?|sessions?|spravato|boosters?|shots?|injections?|nasal spray|infusi[oó]n|"
    r"tratamiento|sesi[oó]n)\b",
    re.IGNORECASE,
)


def _sent_with_picture(message: Message) -> bool:
    """Whether the channel says pictures or files came with the text."""
    metadata = message.get("metadata")
    return isinstance(metadata, dict) and bool(metadata.get(MEDIA_METADATA_KEY))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafetyGuard(GraphComponent):
    """The deciding safety layer on every message; see the module docstring."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # the FallbackClassifier's threshold: a vetoed intent's runner-up must clear it too
        return {"fallback_threshold": 0.3}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyGuard:
        return cls(config)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self._guard = default_guard()
        self._threshold = float((config or {}).get("fallback_threshold", 0.3))

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._process(message)
        return messages

    def _process(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        reading = message.get(READING_KEY) or {}
        sentences: list[str] = reading.get("sentences") or []
        result, by_sentence, verdict = self._read(text, sentences)
        classified = (message.get(INTENT) or {}).get("name")
        verdict["classifier_intent"] = classified
        verdict["classifier_confidence"] = round(float((message.get(INTENT) or {}).get("confidence") or 0), 3)
        undecided = _readings_in_doubt(message) if classified == "nlu_fallback" else []
        if undecided and undecided[0]["name"] == "crisis":
            # the classifier's best reading, however unsure, is a crisis: it is asked about below
            promote(message, undecided[0])
            verdict["classifier_intent"] = classified = "crisis"
        if reading.get("risk"):
            verdict["risk"] = reading["risk"]
        risk_verdict = (reading.get("risk") or {}).get("verdict")
        classifier_sure = (
            classified == "crisis" and float((message.get(INTENT) or {}).get("confidence") or 0) >= CLASSIFIER_SURE
        )
        if result.category in _CATEGORY_RANK:
            self._override_intent(message, "crisis")
        elif (risk_verdict == "confident" and self._classifier_agrees(message, reading)) or (
            classifier_sure and risk_verdict == "uncertain"
        ):
            result.category = "emergency" if reading["risk"]["kind"] == "emergency" else "crisis"
            verdict |= {"category": result.category, "rule": "risk_model"}
            self._override_intent(message, "crisis")
        else:
            self._below_crisis(message, result, verdict, sentences, by_sentence, reading)
        if (message.get(INTENT) or {}).get("name") == "nlu_fallback" and _medical_in_doubt(message):
            self._override_intent(message, "medical_question")
            verdict["in_doubt"] = "medical_question"
        message.set(GUARD_KEY, verdict, add_to_output=True)
        crisis = (message.get(INTENT) or {}).get("name") == "crisis"
        self._add_entities(message, text, result, crisis)

    def _read(self, text: str, sentences: list[str]) -> tuple[GuardResult, list[GuardResult], dict[str, Any]]:
        """The lexicon guard on the whole message and each sentence; the most severe verdict."""
        whole = self._guard.check(text)
        by_sentence = [self._guard.check(s) for s in sentences]
        result, deciding = _most_severe(whole, by_sentence)
        not_now = None
        if result.category == "emergency":
            firing = [s for s, r in zip(sentences, by_sentence) if r.category == "emergency"] or [text]
            # every firing piece a general question or a memory, and no word of now anywhere
            # ("can someone have a seizure from it? he's shaking now")
            if all(not_happening_now(piece) or self._asks_about_a_risk(piece) for piece in firing) and not says_now(
                text
            ):
                not_now = result.rule
                # the rest of the message still speaks ("I have epilepsy, could it give me seizures?")
                matched = result.matched
                result = self._guard.check(_without(text, matched))
                result = result if result.category not in _CATEGORY_RANK else GuardResult(language=whole.language)
                result.medical_terms = sorted(set(result.medical_terms) | set(whole.medical_terms))
                deciding = None
                if result.category is None and any(told_as_a_memory(p) and _TREATMENT.search(p) for p in firing):
                    # "my chest felt tight during the infusion last week but it went away": over,
                    # but a reaction to the treatment, which staff read (docs/POLICY.md)
                    result.category, result.rule, result.matched = "medical", "past_reaction", matched
        topic = crisis_words_as_a_topic(self._guard, text, sentences) if result.category == "crisis" else []
        if topic:
            # crisis words naming what a general question is about: read the rest of the message
            rest = self._guard.check(_without(text, topic))
            if rest.category not in _CATEGORY_RANK:
                result, deciding = rest, None
            else:
                topic = []
        verdict = result.as_dict() | {"sentence": deciding}
        if result.category not in _CATEGORY_RANK and (reason := reason_to_ask(text)):
            verdict["concern"] = reason
        if not_now:
            verdict["not_now"] = not_now
        if topic:
            verdict["crisis_topic"] = topic
        return result, by_sentence, verdict

    def _asks_about_a_risk(self, piece: str) -> bool:
        """A question whether the treatment could bring an emergency on, told of nothing now."""
        before = before_a_risk_question(piece)
        return before is not None and self._guard.check(before).category not in _CATEGORY_RANK

    def _below_crisis(
        self,
        message: Message,
        result: GuardResult,
        verdict: dict[str, Any],
        sentences: list[str],
        by_sentence: list[GuardResult],
        reading: dict[str, Any],
    ) -> None:
        """No confirmed crisis: medical, a person, an idiom veto, and whether to ask the check-in."""
        classified = verdict["classifier_intent"]
        risk_verdict = (reading.get("risk") or {}).get("verdict")
        general_question = self._preamble_then_general_question(sentences, by_sentence, reading)
        if result.category == "medical" and general_question:
            verdict |= {"category": None, "rule": None, "context_only": result.rule}
            result.category = None
        if not result.fired and result.medical_terms and _sent_with_picture(message):
            # the picture makes it personal: "what's this rash?" asks about the patient's own skin
            result.category, result.rule, result.matched = "medical", "with_picture", list(result.medical_terms)
            verdict |= {"category": "medical", "rule": "with_picture", "matched": result.matched}
        if not result.fired and result.medical_terms and asks_for_oneself(message.get(TEXT) or ""):
            # "is it ok with a pacemaker? asking for myself": said in general, meant for the writer
            result.category, result.rule, result.matched = "medical", "asked_for_oneself", list(result.medical_terms)
            verdict |= {"category": "medical", "rule": "asked_for_oneself", "matched": result.matched}
        unreadable = reading.get("unreadable") is not None
        if unreadable and not result.fired:
            # a sentence in a language the assistant cannot read may say anything: a person reads
            # it, and the safety question (with 988 and 911) is asked meanwhile
            result.category, result.rule = "human", "unreadable_language"
            verdict |= {"category": "human", "rule": "unreadable_language"}
        if result.fired:
            intent = _GUARD_INTENT[result.category]
            if _SEVERITY.get(intent, 0) > _SEVERITY.get(classified, 0):
                self._override_intent(message, intent)
        elif (result.idioms or verdict.get("crisis_topic")) and (
            classified == "crisis" or (classified == "medical_question" and not result.medical_terms)
        ):
            # The only danger words sit inside an everyday idiom ("I'd kill for a coffee") or name
            # what a general question is about ("is it used for suicidal depression?"), and no
            # crisis phrase or medical term matched: take the classifier's next choice.
            excluded = {"crisis", classified} | (set() if result.medical_terms else {"medical_question"})
            self._veto(message, excluded, self._threshold)
            verdict["vetoed"] = {"classifier_intent": classified, "idioms": result.idioms}
        elif general_question and classified == "medical_question":
            self._take_question_intent(message, sentences, reading)
            verdict.setdefault("context_only", "classifier")
        current = (message.get(INTENT) or {}).get("name")
        if current == "crisis" and self._classifier_alone_unsure(message, reading, result):
            # Only the whole-message classifier reads a crisis, and more unsure of it than not, while
            # the risk model (trained for this, its check-in threshold chosen for recall) finds no
            # piece at risk and no sentence reads as one: the classifier's crisis class is also where
            # messages it cannot place land ("when should I cut my first crop of alfalfa"). Take its
            # next reading.
            self._veto(message, {"crisis"}, self._threshold)
            verdict["vetoed"] = {"classifier_intent": "crisis", "risk": "below the check-in threshold"}
            current = (message.get(INTENT) or {}).get("name")
        unconfirmed = (
            unreadable
            or "concern" in verdict
            or risk_verdict == "confident"
            or (risk_verdict == "uncertain" and not self._risk_outweighed(message, reading, result))
            or (_a_sentence_reads_as_crisis(reading) and not self._read_elsewhere(message, result))
        )
        if unconfirmed or current == "crisis":
            # Not confirmed by any lexicon rule: ask, and resume the best non-crisis intent.
            verdict["safety"] = "checkin"
            if current == "crisis" and result.fired:
                # the guard's own verdict (a personal medical question, a person) still holds:
                # staff get it in this turn, beside the question
                self._override_intent(message, _GUARD_INTENT[result.category])
            elif current == "crisis":
                self._veto(message, {"crisis"}, self._threshold)

    @staticmethod
    def _classifier_agrees(message: Message, reading: dict[str, Any]) -> bool:
        """Whether an intent model is also sure of a crisis where the risk model was confident.

        The whole-message classifier for the whole message; the sentence intent model for a
        sentence. Otherwise a confident risk reading asks the check-in question instead: an
        n-gram model can be sure of "i just want to plan my week" for the wrong reason.
        """
        best = _intent_of_deciding_piece(message, reading)
        return best.get("name") == "crisis" and float(best.get("confidence") or 0) >= CLASSIFIER_SURE

    @staticmethod
    def _classifier_alone_unsure(message: Message, reading: dict[str, Any], result: GuardResult) -> bool:
        """Whether a classifier ``crisis`` below :data:`CLASSIFIER_MIDDLING` is the only sign of one:
        no lexicon rule, no risk-model piece at the check-in threshold, no sentence read as one."""
        risk = reading.get("risk") or {}
        return (
            not result.fired
            and "verdict" in risk
            and risk["verdict"] is None
            and not _a_sentence_reads_as_crisis(reading)
            and float((message.get(INTENT) or {}).get("confidence") or 0) < CLASSIFIER_MIDDLING
        )

    @staticmethod
    def _read_elsewhere(message: Message, result: GuardResult) -> bool:
        """A turn that goes to staff anyway (medical, a person), or danger words that all sit
        inside a known idiom: no check-in question is needed."""
        if (message.get(INTENT) or {}).get("name") in ("medical_question", "request_human"):
            return True
        return bool(result.idioms and not result.fired)

    @staticmethod
    def _risk_outweighed(message: Message, reading: dict[str, Any], result: GuardResult) -> bool:
        """Whether an uncertain risk reading needs no question after all.

        Danger words that all sit inside a known idiom ("my mom will kill me") are not a crisis;
        and when an intent model that knows crisis language too is sure the deciding piece is
        something else ("quiero agendar una consulta"), the two disagree only weakly. A turn that
        goes to staff anyway (medical, a person) is asked too: staff read it later, and a crisis
        told as a medical question ("I know exactly how much of my meds it takes") needs 988 now.
        """
        if result.idioms and not result.fired:
            return True
        if (reading.get("risk") or {}).get("kind") == "emergency":
            # a possible emergency now cannot wait on an intent model's opinion (stroke signs read
            # as small talk): the question carries 911
            return False
        best = _intent_of_deciding_piece(message, reading)
        return (
            best.get("name") not in (None, "crisis", *_CANNOT_OUTWEIGH)
            and float(best.get("confidence") or 0) >= CLASSIFIER_OUTWEIGHS
        )

    @staticmethod
    def _preamble_then_general_question(
        sentences: list[str], by_sentence: list[GuardResult], reading: dict[str, Any]
    ) -> bool:
        """Personal context in statements, then a question whose answer does not depend on it.

        Each question sentence must fire no rule of its own, refer to no relative, ask nothing
        about the writer's suitability or what they described, and be either about people in
        general or on a topic a health history cannot change (cost, hours, what happens...).
        """
        questions = [i for i, s in enumerate(sentences) if is_question(s)]
        if not questions or len(questions) == len(sentences):
            return False
        if any(asks_for_oneself(s) for s in sentences):
            return False  # "can you do it with a pacemaker? asking for me"
        intents = reading.get("sentence_intents") or []

        def general(i: int) -> bool:
            sentence = sentences[i]
            if by_sentence[i].category is not None or PERSONAL_QUESTION.search(COMPANION.sub(" ", sentence)):
                return False
            if GENERIC_SUBJECT.search(sentence) and not WRITER.search(sentence):
                return True
            intent = intents[i] if i < len(intents) else {}
            return intent.get("name") in _LOGISTIC_TOPICS and intent.get("confidence", 0) >= _SENTENCE_INTENT_CONFIDENCE

        return all(general(i) for i in questions)

    @staticmethod
    def _take_question_intent(message: Message, sentences: list[str], reading: dict[str, Any]) -> None:
        """The classifier read the preamble: answer the general question's own intent instead."""
        intents = reading.get("sentence_intents") or []
        asked = [
            intents[i]
            for i, s in enumerate(sentences)
            if i < len(intents)
            and is_question(s)
            and intents[i]["name"].startswith("faq_")
            and intents[i]["confidence"] >= _SENTENCE_INTENT_CONFIDENCE
        ]
        if asked:
            promote(message, max(asked, key=lambda s: s["confidence"]))

    @staticmethod
    def _override_intent(message: Message, intent: str) -> None:
        promote(message, {"name": intent, "confidence": 1.0})

    @staticmethod
    def _veto(message: Message, excluded: set[str], threshold: float) -> None:
        """Replaces the intent by the best remaining one, or nlu_fallback if none is confident."""
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") not in excluded | {"nlu_fallback"}]
        best = ranking[0] if ranking and ranking[0].get("confidence", 0) >= threshold else None
        chosen = best or {"name": "nlu_fallback", "confidence": 1.0}
        message.set(INTENT, chosen, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking if best else [chosen, *ranking], add_to_output=True)

    @staticmethod
    def _add_entities(message: Message, text: str, result: GuardResult, crisis: bool) -> None:
        """``language`` when the message tells it (it picks English or Spanish replies, and the slot
        keeps it through short messages); ``crisis_kind`` on a crisis."""
        language = (
            detect_language(text)
            or _page_language(message)
            or (SPANISH if crisis and result.language == SPANISH else None)
        )
        found = [("language", language)] if language else []
        if crisis:
            found.append(("crisis_kind", "emergency" if result.category == "emergency" else "self_harm"))
        entities = [e for e in message.get(ENTITIES) or [] if e.get("entity") not in ("crisis_kind", "language")]
        for name, value in found:
            entities.append(
                {
                    "entity": name,
                    "value": value,
                    "start": 0,
                    "end": len(text),
                    "confidence": 1.0,
                    "extractor": "SafetyGuard",
                }
            )
        message.set(ENTITIES, entities, add_to_output=True)


def _readings_in_doubt(message: Message) -> list[dict[str, Any]]:
    """The classifier's readings, best first, without the fallback it chose among them."""
    return [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name") != "nlu_fallback"]


def _medical_in_doubt(message: Message) -> bool:
    """Whether a personal medical question is among the readings a fallback hesitated between."""
    readings = _readings_in_doubt(message)
    if not readings:
        return False
    best = float(readings[0].get("confidence") or 0)
    return any(
        r["name"] == "medical_question"
        and float(r.get("confidence") or 0) >= max(MEDICAL_IN_DOUBT, best - AMBIGUITY_MARGIN)
        for r in readings[:2]
    )


def _a_sentence_reads_as_crisis(reading: dict[str, Any]) -> bool:
    """Whether the sentence intent model reads one sentence as a crisis, however the risk model
    scored it: the two models learn from the same examples in different ways, and either one
    suggesting a crisis is reason enough to ask."""
    return any(
        s.get("name") == "crisis" and float(s.get("confidence") or 0) >= SENTENCE_SUGGESTS_CRISIS
        for s in reading.get("sentence_intents") or []
    )


def _page_language(message: Message) -> str | None:
    """The language the patient's page or app asked for (the widget sends it with the first
    message of a conversation, from ``data-language`` or the page's ``lang``)."""
    metadata = message.get("metadata")
    language = metadata.get("language") if isinstance(metadata, dict) else None
    return language if language in LANGUAGES else None


def _intent_of_deciding_piece(message: Message, reading: dict[str, Any]) -> dict[str, Any]:
    """The intent read for the piece the risk model found riskiest: the classifier's for the
    whole message, the sentence intent model's for a sentence ({} when there is none)."""
    piece = int((reading.get("risk") or {}).get("piece") or 0)
    if piece == 0:
        return message.get(INTENT) or {}
    intents = reading.get("sentence_intents") or []
    return intents[piece - 1] if piece - 1 < len(intents) else {}


def _without(text: str, phrases: list[str]) -> str:
    for phrase in sorted(phrases, key=len, reverse=True):
        text = re.sub(re.escape(phrase), " ", text, flags=re.IGNORECASE)
    return text


def _most_severe(whole: GuardResult, by_sentence: list[GuardResult]) -> tuple[GuardResult, int | None]:
    """The whole message's verdict, unless a sentence holds a more severe crisis or emergency.

    Returns the verdict and the index of the deciding sentence (None: the whole message).
    Medical and request-for-a-person verdicts come from the whole message only: a personal
    statement on its own is not a personal question.
    """
    best, deciding = whole, None
    for i, result in enumerate(by_sentence):
        if _CATEGORY_RANK.get(result.category or "", 0) > _CATEGORY_RANK.get(best.category or "", 0):
            best, deciding = result, i
    if deciding is not None:
        best.language = whole.language
    return best, deciding

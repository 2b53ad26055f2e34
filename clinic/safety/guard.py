"""The deterministic safety guard: crisis, emergency and personal-medical detection.

Independent of the trained classifier, the guard reads each patient message with spaCy
(``spacy.blank("en")`` plus the lookup lemmatizer from spacy-lookups-data) and Matcher patterns
compiled from the lexicons in ``clinic/safety/lexicons/``. Rules combine the matches:

* ``crisis``: self-harm, suicidal thoughts, harm to others, an overdose taken on purpose
  (English or Spanish); idioms ("this price is killing me") and explicit denials
  ("I'm not suicidal") do not count.
* ``emergency``: an acute medical emergency (chest pain, can't breathe, seizure, overdose...).
* ``medical``: a personal medical question: a named medicine, or a condition, symptom, dose,
  test result or pregnancy framed as the writer's own (or a relative's), or a request for a
  personal verdict ("is it safe for me").
* ``human``: asking for a person ("operator", "REPRESENTATIVE", "just get me a human"); the
  lowest rule, so a crisis or a medical question in the same message wins.

The result says which rule fired and which words matched, so staff and auditors can see why.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import spacy
import yaml
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span

from clinic.reading.language import SPANISH, SPANISH_WORDS, detect_language, english_words
from clinic.reading.questions import says_now

LEXICON_DIR = Path(__file__).resolve().parent / "lexicons"
MAX_CHARS = 50_000  # longer messages are read in full up to this many characters
_GAP = 3  # "*" in a phrase: up to this many arbitrary tokens
_MAX_VARIANTS = 400  # a phrase with more spelt-out variants stays a Matcher pattern

# Words that must never count as "a medicine": the treatment itself.
_NOT_MEDICINES = frozenset({"ketamine", "esketamine", "spravato", "ketalar", "special k"})
# "I've read about people having...": the writer reports what others have (see _reports).
_REPORTING_VERBS = frozenset({"read", "hear", "see", "learn"})
_REPORT_FILLERS = frozenset({"been", "have", "'ve", "ve", "keep", "kept", "also", "just", "even", "already", "often"})
_OTHERS = frozenset({"people", "ppl", "someone", "somebody", "others", "patients", "folks"})
# People the policy does not count as the writer's relatives: their health is hearsay
_NOT_KIN = frozenset(
    {"friend", "friends", "buddy", "buddies", "coworker", "coworkers", "co-worker", "neighbor", "neighbors",
     "neighbour", "roommate", "roommates", "classmate", "classmates", "boss", "pastor", "coach", "teacher",
     "bestie", "bff", "amiga", "amigo", "amigas", "amigos", "vecina", "vecino", "compañera", "compañero"}
)
_WRITER_WORDS = frozenset({"i", "i'm", "im", "me", "my", "we", "our", "yo", "mi"})
# A thing, not a person, before "is": "they think this is just legal drug use"
_THINGS = frozenset({"this", "that", "it", "which", "ketamine", "treatment", "clinic", "esto", "eso"})
# "is that normal for most folks?", "is it safe in general": a verdict asked about people at large
_IN_GENERAL = re.compile(
    r"^\W*(?:(?:for|in|among|with)\s+(?:most|many|all|the average|other)?\s*"
    r"(?:people|ppl|folks|patients|everyone|everybody|anyone|anybody|others|general|persons?)\b"
    r"|(?:generally|usually|typically|normally)\b)(?!.*\blike me\b)"
)
# "do I have to stop eating" asks about fasting before an infusion, not about a medicine
_FASTING = re.compile(r"^\W*(?:eating|food|solids?|solid food)\b")
# Pounds and kilos are a body weight only beside a word that says so ("we caught 40 lbs of fish")
_WEIGHT_UNIT_RE = re.compile(r"(?:lbs?|pounds?|kgs?|kilos?|kilograms?)$")
_WEIGHT_RE = re.compile(
    r"\b(?:weigh\w*|weight|heavy|i'm|im|i am|he's|she's|hes|shes|he is|she is|peso|pesa)"
    r"\s*(?:about|around|like|only)?\s*\d"
    r"|\b(?:weigh\w*|weight|peso|pesa)\b"
)
# Hypothetical framing ("will I feel dizzy after?") is a general aftercare question.
_HYPOTHETICAL = frozenset({"will", "would", "could", "might", "do", "does", "can"})
_COMPARISON = frozenset(
    {"like", "than", "vs", "versus", "compare", "compared", "differ", "different", "difference",
     "diferencia", "diferente", "diferencian", "comparado", "comparada", "como"}
)
_INTENT_WORDS = (
    "on purpose", "to die", "to end", "end it", "kill myself", "intentional", "meant to", "wanted to die",
    "a propósito", "para morir", "para matarme", "quiero morir",
)
_DOSE_RE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s?(?:mg|mgs|milligrams?|mcg|micrograms?|ml|mls|milliliters?|cc|units?|"
    r"lbs?|pounds?|kgs?|kilos?|kilograms?|mg/kg)\b"
)
# "at 3", "3pm", "10:30", "4 p.m.": a clock time, as a scheduling sentence names it (the guard
# reads "10:30" as "10 30" and "p.m." as "p m")
_CLOCK_RE = re.compile(
    r"\b(?:at\s+\d{1,2}\b|\d{1,2}(?:[:\s][0-5]\d)?\s?(?:am|pm|a\s?m|p\s?m)\b|\d{1,2}[:\s][0-5]\d\b)", re.IGNORECASE
)
_BP_RE = re.compile(r"\b(?:[7-9]\d|1\d\d|2[0-4]\d)\s?/\s?(?:[4-9]\d|1[0-4]\d)\b")
# Vital signs a reading of which, told with a symptom or of now, is an emergency: a pulse under 45
# or over 150, oxygen under 90%, blood pressure at 180/120 or over, or a systolic under 80.
_PULSE_RE = re.compile(
    r"\b(?:pulse|heart ?rate|hr|heartbeat|pulso|ritmo cardiaco|frecuencia cardiaca)"
    r"(?:\s+[a-záéíóú']+){0,3}?\s+(\d{2,3})\b"
    r"|\b(\d{2,3})\s?bpm\b",
    re.IGNORECASE,
)
_OXYGEN_RE = re.compile(
    r"\b(?:oxygen|o2|sats?|spo2|pulse ?ox|oximeter|ox|oxigeno|ox[ií]geno|saturaci[oó]n)(?:\s+[a-z]+){0,3}?\s+(\d{2})\b",
    re.IGNORECASE,
)
_BP_VALUES_RE = re.compile(r"\b(\d{2,3})\s?/\s?(\d{2,3})\b")
_UNWELL_WORDS = frozenset(
    {"gasp", "gasping", "faint", "fainting", "chest", "blue", "pale", "clammy", "pounding", "racing", "breathe",
     "breathing", "collapse", "collapsed", "mareado", "mareada", "sudando", "pecho", "desmayo", "respirar"}
)
_SPANISH_MARKERS = frozenset(
    "que quiero estoy tengo mi mis me para por pero como porque ya nada nadie vida morir muerto "
    "muerta puedo ayuda hijo hija esposo esposa mamá papá pecho respirar pastillas no sé".split()
)
_OTHER_PERSONS = {
    "myself": ("himself", "herself", "themselves", "themself", "yourself"),
    "my": ("his", "her", "their"),
    "i": ("he", "she", "they"),
    "me": ("him", "her", "them"),
}
_MEDICAL_LABELS = (
    "MEDICINE", "MEDICINE_WORD", "CONTRAINDICATION", "CONDITION", "PREGNANCY", "SYMPTOM",
    "AFTER_TREATMENT", "TEST", "DOSE_WORD", "VERDICT",
)
_PREGNANCY_WORD = re.compile(r"pregnan|breast|nursing|conceiv|ivf|embaraz|lactan|amamant|dando pecho|s along$")
_POSSESSIVES = frozenset({"my", "his", "her", "their", "our", "mine", "mi", "mis", "su", "sus"})
_TAKING_WORDS = frozenset(
    {"on", "take", "taking", "prescribe", "use", "stop", "quit", "switch", "wean", "taper", "try", "smoke", "drink",
     "need", "tomo", "tomando", "toma", "recetaron", "uso", "usando"}
)
# A text message often drops its "I": "got a pacemaker, does that matter", "been dealing with
# migraines for years". A message (or sentence) opening with such a verb speaks of the writer,
# unless it asks about someone ("have you...", "had any patients...").
_DROPPED_SUBJECT = re.compile(
    r"^\W*(?:got|have|had|been|diagnosed|dealing|struggling|suffering|living)\s+"
    r"(?!(?:you|u|ya|ur|your|yall|y'all|any|anyone|anybody|people|patients|others|they|we|there)\b)",
    re.IGNORECASE,
)
_HAVING_WORDS = frozenset(
    {"have", "be", "'m", "'s", "diagnose", "history", "suffer", "with", "get", "deal", "struggle",
     "tengo", "tiene", "padezco", "sufro", "diagnosticaron", "con"}
)
_FEELING_WORDS = frozenset(
    {"feel", "felt", "feeling", "still", "since", "worse", "weird", "off", "hurt", "pain", "sick",
     "siento", "todavía", "todavia", "desde", "peor", "raro", "rara", "mal", "duele"}
)
_TENSE_WORDS = frozenset({"having", "is", "are", "am", "'m", "'re", "'s", "keeps", "won't", "can't"})
_REPEAT_RE = re.compile(r"(\S)\1{2,}")
# Characters no lexicon phrase contains: anything but letters, digits, spaces, ' - / . , ! ? ¿ ¡
_NOT_WORDLIKE_RE = re.compile(r"[^\w\s'\u2019\-/.,!?¿¡]|_")
_OTHER_SCRIPT_RE = re.compile(r"[^\x00-\x7f¿¡áéíóúñüÁÉÍÓÚÑÜ\u2018\u2019]")
_LONG_RUN_RE = re.compile(r"(\S{32})")
_SHORT_WORD = 8  # below this length a correction must keep the first letter
_MAX_TYPO_WORD = 24  # longer "words" are never misspelt lexicon words
_WORD_RE = re.compile(r"[\w'/]+", re.UNICODE)
_SI_RE = re.compile(r"(?<![\w'])SI(?![\w'])")


@dataclass
class GuardResult:
    """The guard's verdict on one message."""

    category: str | None = None  # "crisis" | "emergency" | "medical" | "human" | None
    rule: str | None = None
    matched: list[str] = field(default_factory=list)
    language: str = "en"
    negated: list[str] = field(default_factory=list)
    idioms: list[str] = field(default_factory=list)
    medical_terms: list[str] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return self.category is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "rule": self.rule,
            "matched": self.matched,
            "language": self.language,
            "negated": self.negated,
            "idioms": self.idioms,
            "medical_terms": self.medical_terms,
        }


def _load_yaml(directory: Path, name: str) -> dict[str, list[str]]:
    data = yaml.safe_load((directory / name).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"lexicon {name}: expected a mapping of category to phrases")
    return {str(k): [str(p).strip().lower() for p in (v or []) if str(p).strip()] for k, v in data.items()}


class LexiconGuard:
    """Compiles the lexicons once; :meth:`check` is then pure and fast (~1 ms a message)."""

    def __init__(self, lexicon_dir: Path = LEXICON_DIR) -> None:
        self._dir = lexicon_dir
        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        self.nlp.initialize()
        lemmatizer: Any = self.nlp.get_pipe("lemmatizer")  # spaCy's Lemmatizer (its type stubs say Pipe)
        self._lemma_table = lemmatizer.lookups.get_table("lemma_lookup")
        fixes = yaml.safe_load((lexicon_dir / "lemma_fixes.yml").read_text(encoding="utf-8")) or {}
        for word, lemma in fixes.items():
            self._lemma_table.set(str(word), str(lemma))
        self.shorthand = self._load_shorthand()
        self.matcher = Matcher(self.nlp.vocab)  # phrases with "*", "|" or tense words
        self.phrase_matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")  # plain phrases (fast)
        # what a Matcher pattern can start with, and its longest length (see _pattern_matches)
        self._first_lemmas: set[str] = set()
        self._first_lowers: set[str] = set()
        self._longest = 1
        # Spanish grammar words are not misspelt English ("tambien" is not "ambien")
        self._known: set[str] = set(_load_yaml(self._dir, "vocabulary.yml").get("words", [])) | SPANISH_WORDS
        self._english = english_words()
        self._typo_targets: dict[str, int] = {}
        self._add_danger_lexicons()
        self._add_medical_lexicons()
        self._add_person_lexicons()
        self._typo_index = _build_typo_index(self._typo_targets)

    def _add_danger_lexicons(self) -> None:
        """Crisis, emergency, negation and idiom phrases, English and Spanish."""
        crisis = _load_yaml(self._dir, "crisis.yml")
        emergency = _load_yaml(self._dir, "emergency.yml")
        self._spanish_crisis = set(crisis.get("spanish", [])) | set(emergency.get("spanish", []))
        spanish_emergency = emergency.get("spanish", [])
        spanish_crisis = [p for p in crisis.get("spanish", []) if p not in spanish_emergency]
        other_languages = crisis.get("other_languages", [])
        self._add("SELF_HARM", crisis.get("self_harm", []) + spanish_crisis + other_languages, typos=2, persons=True)
        self._add("HARM_OTHERS", crisis.get("harm_others", []), typos=1)
        self._add("OVERDOSE", crisis.get("overdose", []), typos=2, persons=True)
        self._add("LETHALITY", crisis.get("lethality", []), typos=1)
        self._add("ASKED_FOR_SELF", crisis.get("asked_for_self", []))
        self._add("NEGATED", crisis.get("negated", []))
        self._add("EMERGENCY", emergency.get("english", []) + spanish_emergency, typos=2, persons=True)
        self._add("INGESTION", emergency.get("ingestion", []))
        self._add("IDIOM", _load_yaml(self._dir, "idioms.yml").get("phrases", []))

    def _add_medical_lexicons(self) -> None:
        """Medicines, conditions, symptoms and the personal framing of a medical question."""
        medicines = _load_yaml(self._dir, "medicines.yml")
        generic = medicines.pop("generic_words", [])
        conditions = _load_yaml(self._dir, "conditions.yml")
        pregnancy_words = [c for c in conditions.get("other", []) if _PREGNANCY_WORD.search(c)]
        other_conditions = [
            c
            for key in ("mental_health", "pain", "other")
            for c in conditions.get(key, [])
            if c not in pregnancy_words
        ]
        symptoms = _load_yaml(self._dir, "symptoms.yml")
        framing = _load_yaml(self._dir, "framing.yml")
        named = [m for names in medicines.values() for m in names if m not in _NOT_MEDICINES]
        self._add("MEDICINE", named, typos=1)
        self._add("MEDICINE_WORD", [g for g in generic if g not in _NOT_MEDICINES], typos=1)
        self._add("CONTRAINDICATION", conditions.get("contraindications", []), typos=1)
        self._add("CONDITION", other_conditions, typos=1)
        self._add("PREGNANCY", pregnancy_words, typos=1)
        self._add("SYMPTOM", symptoms.get("general", []), typos=1)
        self._add("AFTER_TREATMENT", symptoms.get("after_treatment", []))
        self._add("PERSONAL", framing.get("personal", []))
        self._add("RELATIVE", framing.get("relatives", []))
        self._add("SUITABILITY", framing.get("suitability", []))
        self._add("DOSE_WORD", framing.get("dose", []))
        self._add("TEST", framing.get("tests", []), typos=1)
        verdict = _load_yaml(self._dir, "verdict.yml")
        self._add("VERDICT", verdict.get("phrases", []))
        self._add("EVERYDAY_VERDICT", verdict.get("everyday", []))
        self._add("SCHEDULING", verdict.get("scheduling_words", []))
        self._add("TREATMENT", verdict.get("treatment_words", []))

    def _add_person_lexicons(self) -> None:
        """Requests for a person: phrases, and whole messages that only name one."""
        human = _load_yaml(self._dir, "human.yml")
        self._add("HUMAN", human.get("phrases", []), typos=1)
        self._person_fillers = set(human.get("fillers", []))
        self._person_words = {
            " ".join(w for w in self._normalize(p).split() if w not in self._person_fillers)
            for p in human.get("whole_message", [])
        }
        for phrase in human.get("whole_message", []):
            self._remember_words(phrase, typos=1)

    # -- compiling -------------------------------------------------------------------------

    def _load_shorthand(self) -> dict[str, str]:
        raw = yaml.safe_load((self._dir / "shorthand.yml").read_text(encoding="utf-8")) or {}
        return {str(k).lower(): str(v).lower() for k, v in raw.items()}

    def _lemma(self, word: str) -> str:
        return self._lemma_table.get(word, word)

    def _token_spec(self, word: str) -> dict[str, Any]:
        # "having a seizure" is happening now; "had a seizure" is history: keep the tense.
        return {"LOWER": word} if word in _TENSE_WORDS else {"LEMMA": self._lemma(word)}

    def _slot(self, slot: str, persons: bool = False) -> list[dict[str, Any]]:
        """One space-separated slot of a phrase as Matcher token specs.

        With ``persons``, first-person words also match the other persons, so a phrase
        written as "kill myself" also catches "he wants to kill himself".
        """
        if slot == "*":
            return [{"OP": "?"}] * _GAP
        alternatives = slot.split("|")
        if len(alternatives) == 1 and len(self.nlp.make_doc(slot)) > 1:
            return [self._token_spec(tok.text) for tok in self.nlp.make_doc(slot)]
        if len(alternatives) == 1 and slot in _TENSE_WORDS:
            return [self._token_spec(slot)]
        options: set[str] = set()
        for alt in alternatives:
            if len(self.nlp.make_doc(alt)) != 1:
                raise ValueError(f"lexicon alternative {alt!r} in {slot!r} must be a single word")
            lemma = self._lemma(alt)
            options.add(lemma)
            if persons:
                options.update(_OTHER_PERSONS.get(lemma, ()))
        return [{"LEMMA": next(iter(options))} if len(options) == 1 else {"LEMMA": {"IN": sorted(options)}}]

    def _add(self, label: str, phrases: Iterable[str], typos: int = 0, persons: bool = False) -> None:
        """Compiles phrases under ``label``.

        Args:
            typos: misspellings of this lexicon's words to correct: 0 none, 1 one edit
                (words of 6+ letters), 2 up to two edits for words of 8+ letters.
            persons: also match the phrase about a third person.
        """
        patterns: list[list[dict[str, Any]]] = []
        plain: list[Doc] = []
        for phrase in phrases:
            phrase = self._normalize(phrase)
            variants = self._plain_variants(phrase, persons)
            if variants is not None:
                plain.extend(self.nlp(variant) for variant in variants)
                self._remember_words(phrase, typos)
                continue
            pattern = [spec for slot in phrase.split() for spec in self._slot(slot, persons)]
            # a pattern may not start or end with a wildcard
            while pattern and pattern[0] == {"OP": "?"}:
                pattern.pop(0)
            while pattern and pattern[-1] == {"OP": "?"}:
                pattern.pop()
            if pattern:
                patterns.append(pattern)
            self._remember_words(phrase, typos)
        if patterns:
            self.matcher.add(label, patterns)
            for pattern in patterns:
                first = pattern[0]
                values: Any = first.get("LEMMA", first.get("LOWER"))
                target = self._first_lemmas if "LEMMA" in first else self._first_lowers
                target.update(values["IN"] if isinstance(values, dict) else [values])
                self._longest = max(self._longest, len(pattern))
        if plain:
            self.phrase_matcher.add(label, plain)

    def _plain_variants(self, phrase: str, persons: bool) -> list[str] | None:
        """The phrase as plain word sequences for the (much faster) PhraseMatcher.

        Alternatives ("kill|hurt myself") and other persons ("himself") are spelt out; None when
        the phrase needs the Matcher: a gap ("*"), a tense-sensitive word, or too many variants.
        """
        slots: list[list[str]] = []
        for slot in phrase.split():
            if slot == "*" or any(t.text in _TENSE_WORDS for t in self.nlp.make_doc(slot.replace("|", " "))):
                return None
            options = slot.split("|")
            for alt in options:
                if len(self.nlp.make_doc(alt)) != 1 and len(options) > 1:
                    raise ValueError(f"lexicon alternative {alt!r} in {slot!r} must be a single word")
            if persons:
                options = options + [o for alt in options for o in _OTHER_PERSONS.get(self._lemma(alt), ())]
            slots.append(list(dict.fromkeys(options)))
        if math.prod(len(options) for options in slots) > _MAX_VARIANTS:
            return None
        return [" ".join(words) for words in itertools.product(*slots)]

    def _remember_words(self, phrase: str, typos: int) -> None:
        words = re.findall(r"[a-záéíóúñü]+", phrase)
        self._known.update(words)
        for word in words:
            if typos and len(word) >= 6:
                self._typo_targets[word] = max(self._typo_targets.get(word, 0), typos)

    # -- reading a message -----------------------------------------------------------------

    def _normalize(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text).lower()
        text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
        text = "".join(ch if ch.isprintable() or ch.isspace() else " " for ch in text)
        text = _REPEAT_RE.sub(r"\1\1", text)  # "soooo" -> "soo", "!!!!!" -> "!!", emoji runs
        return " ".join(self._expand(word) for word in text.split())

    def _expand(self, word: str) -> str:
        core = word.strip(".,!?;:\"()[]{}…")
        if core in self.shorthand:
            return word.replace(core, self.shorthand[core], 1)
        return word

    def _correct_typos(self, text: str) -> str:
        def fix(match: re.Match) -> str:
            word = match.group(0)
            if not 6 <= len(word) <= _MAX_TYPO_WORD or word in self._known or not word.isalpha():
                return word
            if word in self._lemma_table or word in self._english:
                return word  # an English word ("concert") is not a misspelt lexicon word ("concerta")
            return _closest(word, self._typo_index, self._typo_targets) or word

        return _WORD_RE.sub(fix, text)

    def read(self, text: str) -> Doc:
        """The normalized, typo-corrected, lemmatized message."""
        text = _NOT_WORDLIKE_RE.sub(" ", (text or "")[:MAX_CHARS])  # symbols, emoji, control bytes
        text = _LONG_RUN_RE.sub(r"\1 ", text)  # no word is this long: keeps tokenizing linear
        # the lexicons are English and Spanish: a word with other letters cannot match (and junk
        # bytes would cost spaCy a new vocabulary entry each)
        text = " ".join(filter(None, (_in_lexicon_letters(w) for w in text.split())))
        return self.nlp(self._correct_typos(self._normalize(_spell_out_si(text))))

    def check(self, text: str) -> GuardResult:
        """Classifies one patient message; see the module docstring for the rules."""
        if not text or not text.strip():
            return GuardResult()
        doc = self.read(text)
        text = doc.text  # built once: Doc.text joins every token on each access
        spans: dict[str, list[Span]] = {}
        for match_id, start, end in [*self._pattern_matches(doc), *self.phrase_matcher(doc)]:
            spans.setdefault(self.nlp.vocab.strings[match_id], []).append(doc[start:end])
        result = GuardResult(language=self._language(doc, text, spans))
        blocked = spans.get("IDIOM", []) + spans.get("NEGATED", [])
        result.negated = _texts(spans.get("NEGATED", []))
        result.idioms = _texts(spans.get("IDIOM", []))

        def live(label: str) -> list[Span]:
            return [s for s in spans.get(label, []) if not any(_overlaps(s, b) for b in blocked)]

        spans = {label: live(label) for label in spans if label not in ("IDIOM", "NEGATED")}
        get = lambda label: spans.get(label, [])  # noqa: E731
        result.medical_terms = _texts(s for label in _MEDICAL_LABELS for s in get(label))
        self_harm, others, overdose, emergency = get("SELF_HARM"), get("HARM_OTHERS"), get("OVERDOSE"), get("EMERGENCY")
        ingested = get("INGESTION") and (get("MEDICINE") or get("MEDICINE_WORD"))
        intentional = any(w in text for w in _INTENT_WORDS)
        # "asking because i want to" ends the clause: "...want to know" is curiosity
        for_self = [s for s in get("ASKED_FOR_SELF") if s.end == len(doc) or doc[s.end].is_punct]
        if get("LETHALITY") and for_self:
            return _fire(result, "crisis", "lethality_for_self", get("LETHALITY") + for_self)
        if self_harm or others or ((overdose or ingested or emergency) and intentional):
            rule = "self_harm" if self_harm else ("harm_to_others" if others else "intentional_overdose")
            return _fire(result, "crisis", rule, self_harm + others + overdose + emergency + get("INGESTION"))
        if emergency or overdose:
            return _fire(result, "emergency", "acute_emergency", emergency + overdose)
        if ingested:
            ingestion = get("INGESTION") + get("MEDICINE") + get("MEDICINE_WORD")
            return _fire(result, "emergency", "accidental_ingestion", ingestion)
        vitals = _dangerous_vitals(text)
        if vitals and (
            get("SYMPTOM") or get("AFTER_TREATMENT") or any(t.lower_ in _UNWELL_WORDS for t in doc) or says_now(text)
        ):
            return _fire(result, "emergency", "dangerous_vitals", get("SYMPTOM") + get("AFTER_TREATMENT"), extra=vitals)
        result = self._medical(doc, text, spans, result)
        if not result.fired:
            if get("HUMAN"):
                return _fire(result, "human", "asks_for_a_person", get("HUMAN"))
            if self._names_a_person(doc):
                return _fire(result, "human", "names_a_person", [doc[:]])
        return result

    def _names_a_person(self, doc: Doc) -> bool:
        """Whether the whole message, filler words left out, names a person to talk to."""
        words = [t.lower_ for t in doc if t.is_alpha and t.lower_ not in self._person_fillers]
        return 0 < len(words) <= 3 and " ".join(words) in self._person_words

    def _pattern_matches(self, doc: Doc) -> list[tuple[int, int, int]]:
        """Matcher results, running the Matcher only on windows that start where a pattern can.

        Same matches as ``self.matcher(doc)``; on long or junk messages it skips the tokens no
        pattern starts with, which keeps the guard fast whatever the input.
        """
        starts = [
            i for i, t in enumerate(doc) if t.lemma_ in self._first_lemmas or t.lower_ in self._first_lowers
        ]
        windows: list[list[int]] = []
        for i in starts:
            if windows and i < windows[-1][1]:
                windows[-1][1] = min(len(doc), i + self._longest)
            else:
                windows.append([i, min(len(doc), i + self._longest)])
        return [(m, a + s, a + e) for a, b in windows for m, s, e in self.matcher(doc[a:b])]

    def _medical(self, doc: Doc, text: str, spans: dict[str, list[Span]], result: GuardResult) -> GuardResult:
        get = lambda label: spans.get(label, [])  # noqa: E731
        # "my friend said she threw up after hers": the friend's health, not the writer's
        own = [s for s in get("PERSONAL") if not (s.end < len(doc) and doc[s.end].lower_ in _NOT_KIN)]
        personal = own + get("RELATIVE")
        if not personal and _DROPPED_SUBJECT.match(text):
            personal = [doc[:1]]
        others = any(t.lower_ in _OTHERS for t in doc)
        experiential = [
            s for s in personal if not _only_hypothetical(s) and not (others and _reports(doc, s))
        ] + get("RELATIVE")
        verdicts = [
            v for v in get("VERDICT") if not (_IN_GENERAL.match(doc[v.end :].text) or _FASTING.match(doc[v.end :].text))
        ]
        if get("EVERYDAY_VERDICT") and not ((get("SCHEDULING") or _CLOCK_RE.search(text)) and not get("TREATMENT")):
            verdicts = verdicts + get("EVERYDAY_VERDICT")
        cue = get("SUITABILITY") + verdicts
        dose_numbers = [n for n in _DOSE_RE.findall(text) if not _WEIGHT_UNIT_RE.search(n)]
        if _WEIGHT_RE.search(text):  # "i'm 250 lbs", "she weighs 50 kilos": a body weight, not a catch
            dose_numbers += [n for n in _DOSE_RE.findall(text) if _WEIGHT_UNIT_RE.search(n)]
        bp = _BP_RE.findall(text)

        if verdicts:
            return _fire(result, "medical", "personal_verdict", verdicts)
        medicines = get("MEDICINE")
        if medicines:
            comparison = any(t.lemma_ in _COMPARISON for t in doc)
            if personal or cue or not comparison:
                return _fire(result, "medical", "named_medicine", medicines + personal[:1])
        owned_medicine = [m for m in get("MEDICINE_WORD") if _attributed(doc, m, _TAKING_WORDS)]
        if owned_medicine and personal:
            return _fire(result, "medical", "personal_medicine", owned_medicine + personal[:1])
        if (dose_numbers and (personal or cue or get("DOSE_WORD"))) or (get("DOSE_WORD") and personal):
            return _fire(result, "medical", "personal_dose", get("DOSE_WORD") + personal[:1], extra=dose_numbers)
        if bp or (get("TEST") and personal):
            return _fire(result, "medical", "test_result", get("TEST") + personal[:1], extra=bp)
        if get("PREGNANCY") and personal:
            return _fire(result, "medical", "pregnancy", get("PREGNANCY") + personal[:1])
        owned_condition = [c for c in get("CONTRAINDICATION") if _attributed(doc, c, _HAVING_WORDS)]
        if owned_condition and personal:
            return _fire(result, "medical", "personal_condition", owned_condition + personal[:1])
        feeling = get("SYMPTOM") or any(t.lemma_ in _FEELING_WORDS for t in doc)
        if get("AFTER_TREATMENT") and experiential and feeling:
            return _fire(result, "medical", "treatment_reaction", get("AFTER_TREATMENT") + get("SYMPTOM"))
        if get("SYMPTOM") and experiential:
            return _fire(result, "medical", "personal_symptom", get("SYMPTOM") + experiential[:1])
        if get("CONDITION") and personal and cue:
            return _fire(result, "medical", "condition_suitability", get("CONDITION") + personal[:1] + cue[:1])
        return result

    def _language(self, doc: Doc, text: str, spans: dict[str, list[Span]]) -> str:
        if any(s.text in self._spanish_crisis for label in ("SELF_HARM", "EMERGENCY") for s in spans.get(label, [])):
            return "es"
        words = [t.text for t in doc if t.is_alpha]
        if words and sum(w in _SPANISH_MARKERS for w in words) >= max(2, len(words) // 4):
            return "es"
        if re.search(r"[ñ¿¡]|ción\b", text):
            return "es"
        return "en"


def _in_lexicon_letters(word: str) -> str:
    """The word as the lexicons spell it: other Latin accents dropped ("muốn" -> "muon", "tèt" ->
    "tet"), Spanish ones kept; "" for a word in another script."""
    if not _OTHER_SCRIPT_RE.search(word):
        return word
    folded = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return "" if _OTHER_SCRIPT_RE.search(folded) else folded


def _dangerous_vitals(text: str) -> list[str]:
    """The readings in a text that are dangerous whoever they belong to (see :data:`_PULSE_RE`)."""
    found = []
    for match in _PULSE_RE.finditer(text):
        value = int(match.group(1) or match.group(2))
        if 20 <= value < 45 or 150 < value <= 250:
            found.append(match.group(0))
    for match in _OXYGEN_RE.finditer(text):
        if 50 <= int(match.group(1)) < 90:
            found.append(match.group(0))
    for match in _BP_VALUES_RE.finditer(text):
        systolic, diastolic = int(match.group(1)), int(match.group(2))
        if systolic > diastolic and (systolic >= 180 or diastolic >= 120 or 50 <= systolic < 80):
            found.append(match.group(0))
    return found


def _spell_out_si(text: str) -> str:
    """"SI" as clinicians and patients write suicidal ideation ("passive SI", "SI bad today").

    Lower case "si" is Spanish for "yes" and is left alone, and so is "SI" in a message whose
    other words are Spanish ("SI, el martes") or that is all capitals ("SI GRACIAS")."""
    if not _SI_RE.search(text) or not re.search(r"[a-z]", text):
        return text
    if detect_language(_SI_RE.sub(" ", text)) == SPANISH:
        return text
    return _SI_RE.sub("suicidal ideation", text)


def _texts(spans: Iterable[Span]) -> list[str]:
    seen: list[str] = []
    for span in spans:
        if span.text not in seen:
            seen.append(span.text)
    return seen


def _fire(result: GuardResult, category: str, rule: str, spans: list[Span], extra: Iterable[str] = ()) -> GuardResult:
    result.category, result.rule = category, rule
    result.matched = _texts(spans) + [e for e in extra if e]
    return result


def _attributed(doc: Doc, span: Span, cues: frozenset[str], window: int = 4) -> bool:
    """Whether the span is the writer's or a relative's: a possessive right before it
    ("my meds", "her bipolar") or a cue word shortly before it ("I'm on X", "I have X"), unless
    people in general come between ("my pastor says folks get addicted")."""
    near = doc[max(0, span.start - 2) : span.start]
    before = doc[max(0, span.start - window) : span.start]
    if any(t.lower_ in _POSSESSIVES for t in near):
        return True
    cue = max((t.i for t in before if t.lemma_ in cues), default=None)
    if cue is None:
        return False
    subject = {t.lower_ for t in doc[max(0, cue - 2) : cue]}
    if doc[cue].lemma_ == "be" and subject & _THINGS and not subject & _WRITER_WORDS:
        return False
    return not (subject & _OTHERS) or bool(subject & _WRITER_WORDS)


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _only_hypothetical(span: Span) -> bool:
    return len(span) >= 2 and span[0].lower_ in _HYPOTHETICAL


def _reports(doc: Doc, span: Span) -> bool:
    """Whether the writer's words are followed by a reporting verb ("I've read", "i keep hearing").

    With people in general named in the message ("I've read about people having memory
    problems"), what follows is what others have; any other reference to the writer still counts.
    """
    following = [t for t in doc[span.end : span.end + 3] if t.lower_ not in _REPORT_FILLERS]
    return bool(following) and following[0].lemma_ in _REPORTING_VERBS


def _deletes(word: str, depth: int) -> set[str]:
    result, frontier = set(), {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        result |= frontier
    return result


def _max_distance(word: str, tier: int = 2) -> int:
    return 2 if tier >= 2 and len(word) >= 8 else 1


def _build_typo_index(targets: dict[str, int]) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for word, tier in targets.items():
        for key in _deletes(word, _max_distance(word, tier)) | {word}:
            index.setdefault(key, set()).add(word)
    return index


def _osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (edits with adjacent transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _closest(word: str, index: dict[str, set[str]], targets: dict[str, int]) -> str | None:
    """The lexicon word within its allowed edit distance of ``word``, if exactly one is closest."""
    limit = _max_distance(word)
    candidates: set[str] = set()
    for key in _deletes(word, limit) | {word}:
        candidates |= index.get(key, set())
    # a short word misspelt keeps its first letter: "jollof" is rice, not a misspelt "zollof"
    scored = sorted(
        (d, c)
        for c in candidates
        if (len(word) >= _SHORT_WORD or c[0] == word[0])
        and (d := _osa_distance(word, c)) <= min(limit, _max_distance(c, targets[c]))
    )
    if scored and (len(scored) == 1 or scored[0][0] < scored[1][0]):
        return scored[0][1]
    return None


@lru_cache(maxsize=1)
def default_guard() -> LexiconGuard:
    """The guard over the project's lexicons, built once per process."""
    return LexiconGuard()

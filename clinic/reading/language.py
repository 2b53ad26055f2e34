"""Which language a patient writes in: Spanish, English, or too little to tell.

The conversation's language (the ``language`` slot) picks the reply texts, so it must not flip
on a short "ok", a name, a phone number or one borrowed word: only a message that says enough
in one language, or asks for one ("en español", "English please"), sets it; anything else
keeps the current language. Mixed messages are read by their grammar words, so code-switching
("cuanto cuesta el infusion?") is Spanish. Word lists, not a statistical model: it runs on
every message, must cost microseconds and be explainable.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

SPANISH = "es"
ENGLISH = "en"
LANGUAGES = (ENGLISH, SPANISH)

# Grammar words and everyday clinic words, written without accents (messages are folded).
SPANISH_WORDS = frozenset(
    """
    que quiero quisiera estoy esta estan tengo tiene tienen tienes mi mis me para por pero como porque
    ya nada nadie vida puedo puede pueden ayuda hijo hija esposo esposa mama papa pecho respirar
    pastillas cuanto cuanta cuesta cuando donde el la los las una unos unas del al es son hay
    necesito hacer cita consulta gracias hola buenas buenos dias tardes noches quien cual cuales
    tambien usted ustedes soy eres hablan habla hablas si seguro seguros aseguranza dinero
    precio semana manana martes miercoles jueves viernes sabado domingo lunes hoy despues antes
    mucho muy poco bien mal duele dolor medicina medicamento tratamiento esto eso ese esa aqui
    alla porfa xq pq q tmb ud uds pa mija mijo nosotros ellos ella ellas algo alguien sobre con
    sin desde hasta hace hago voy vamos estar ser funciona sirve puedes favor otra otro
    tratan atienden aceptan cubre cubren abren cierran quedan queda estan sale cobran necesita necesitan
    debo infusiones sesion sesiones dosis cita citas horario menores edad parqueo ahorita tambien
    cuantas cuantos cuanto donde quien quienes esta estas este estos eres hablas tienen
    de en un se te lo le nos les su sus
    enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre
    lun mar mie jue vie sab dom
    """.split()
)
_ENGLISH_WORDS = frozenset(
    """
    the and is are was were what how when where who why which do does did can could would should
    will i im i'm my me you your it its this that there they he she we our have has had be been
    to of in on for with at from about not dont don't cant can't please thanks thank hi hello hey
    much many cost book appointment consult need want get know just if or so but any much
    after before long take does work safe help yes okay sure really also very
    """.split()
)
# Words that settle the language on their own, so "hola" and "gracias!" are answered in Spanish.
_STRONG_SPANISH = frozenset({"hola", "gracias", "buenas", "buenos", "porfa", "usted", "quiero", "necesito"})
_STRONG_ENGLISH = frozenset({"thanks", "hello", "please", "the", "what", "how"})
_ASKS_SPANISH = re.compile(
    r"\b(?:en|in)\s+espanol\b|\bespanol\s+(?:por\s+favor|porfa|please)\b|\bhabla[ns]?\s+(?:usted(?:es)?\s+)?espanol\b"
    r"|\b(?:do\s+you|can\s+you|you)\s+speak\s+spanish\b|\bspanish\s+(?:please|pls|plz)\b|^\s*espanol\s*[?!.]*\s*$",
)
_ASKS_ENGLISH = re.compile(
    r"\b(?:in|en)\s+(?:english|ingles)\b|\benglish\s+(?:please|pls|plz|por\s+favor)\b"
    r"|\b(?:do\s+you|can\s+you|you)\s+speak\s+english\b|\bhabla[ns]?\s+(?:usted(?:es)?\s+)?ingles\b"
    r"|^\s*english\s*[?!.]*\s*$",
)
_WORD = re.compile(r"[a-z']+")
ENOUGH = 2  # grammar words of one language, more than of the other, to tell
PLAIN_ENGLISH_WORDS = 4  # this many words and not one Spanish word: English


def fold(text: str) -> str:
    """Lower case without accents ("Está" -> "esta"); ñ becomes n, as patients often type it."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def requested_language(text: str) -> str | None:
    """The language the patient asks for ("en español", "English please"), if any."""
    folded = fold(text or "")
    if _ASKS_SPANISH.search(folded):
        return SPANISH
    if _ASKS_ENGLISH.search(folded):
        return ENGLISH
    return None


def detect_language(text: str) -> str | None:
    """``es`` or ``en`` when the message says enough to tell, else None (keep the current one)."""
    asked = requested_language(text)
    if asked:
        return asked
    raw = (text or "").lower()
    # a token with a digit is a booking code, a phone number or a time: its letters ("de" in
    # "de7kq2") are no language
    words = [w for token in fold(raw).split() if not any(c.isdigit() for c in token) for w in _WORD.findall(token)]
    spanish = sum(2 if w in _STRONG_SPANISH else 1 for w in words if w in SPANISH_WORDS or w in _STRONG_SPANISH)
    english = sum(2 if w in _STRONG_ENGLISH else 1 for w in words if w in _ENGLISH_WORDS)
    if re.search(r"[ñ¿¡]", raw):
        spanish += ENOUGH
    if spanish >= ENOUGH and spanish > english:
        return SPANISH
    if english >= ENOUGH and english > spanish:
        return ENGLISH
    if spanish == 0 and sum(len(w) > 1 for w in words) >= PLAIN_ENGLISH_WORDS:  # "everything feels pointless lately"
        return ENGLISH
    # A short question with a Spanish word and not one English one ("donde quedan?", "hay parqueo?")
    if spanish and not english:
        return SPANISH
    if english and not spanish:
        return ENGLISH
    return None


# A sentence in a language the assistant does not read (Tagalog, Vietnamese, Haitian Creole...)
# cannot be answered or ruled safe: too many of its words are unknown to English and to the
# model's own training vocabulary (English and Spanish, with the patients' shorthand).
UNREADABLE_SHARE = 0.6
UNREADABLE_MIN_WORDS = 3  # "ok gracias", a name or "sige po" tells too little either way
_VOCABULARY_WORD = re.compile(r"(?u)\b\w\w+\b")  # as the n-gram features tokenize
NAME_WORDS = 4  # a full name rarely has more
_SENTENCE_MARK = re.compile(r"[.?!¿¡]")
_NOT_LANGUAGE = re.compile(r"\S+@\S+|(?:https?://|www\.)\S+", re.IGNORECASE)  # e-mail addresses, links


class KnownWords:
    """The words the assistant can read: English (spaCy's lookup tables, shipped with the
    project's dependencies) and every word of the training data, folded."""

    def __init__(self, training_words: Iterable[str]) -> None:
        self._words = {fold(w) for w in training_words} | english_words()

    def unreadable(self, sentences: list[str]) -> int | None:
        """The index of the first sentence written mostly in words the assistant cannot read.

        A short message of unknown words only, with no sentence punctuation, is read as a name
        ("Nguyen Thi Minh Khai", "oluwaseun adebayo okafor"): the booking form asks for one.
        """
        for i, sentence in enumerate(sentences):
            sentence = _NOT_LANGUAGE.sub(" ", sentence)
            words = [w for w in _VOCABULARY_WORD.findall(fold(sentence)) if not w.isdigit()]
            unknown = sum(w not in self._words for w in words)
            if len(words) >= UNREADABLE_MIN_WORDS and unknown >= UNREADABLE_SHARE * len(words):
                if len(sentences) == 1 and _looks_like_a_name(sentence, words, unknown):
                    return None
                return i
        return None


def _looks_like_a_name(sentence: str, words: list[str], unknown: int) -> bool:
    return len(words) <= NAME_WORDS and unknown == len(words) and not _SENTENCE_MARK.search(sentence)


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Inflected English forms and their lemmas from spacy-lookups-data (no download)."""
    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "en_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table: dict[str, str] = json.load(handle)
    return frozenset(fold(w) for w in (*table, *table.values()))

"""Crisis words as the subject of a general question, not as something the writer says.

"Can ketamine help people who have suicidal thoughts?" and "is Spravato approved for suicidal
depression?" are questions about the treatment (docs/POLICY.md: faq), while "I have suicidal
thoughts, can ketamine help?" is a crisis. Only the clinical names of the subject count
(suicide, suicidal thoughts or ideation, self-harm), each inside a question about people in
general or the treatment that names no one, in a message where the writer does not say the
subject is theirs ("asking bc i have them"): anything a writer says of themselves or anyone
with them ("wanting to die", "kill myself", "my son is suicidal") is read as before. The answer
to such a question still carries 988 (addons/clinic_nlg.py).
"""

from __future__ import annotations

import re

from clinic.reading.questions import asks_in_general
from clinic.safety.guard import LexiconGuard

_TOPIC = re.compile(
    r"^(?:suicid\w*|self[- ]?harm\w*|autolesi\w*)"
    r"(?:\s+(?:thoughts?|ideation|thinking|depression|feelings?|risk|attempts?|prevention|pensamientos?))?$"
    r"|^(?:pensamientos?|ideas?|ideación|ideacion)\s+suicidas?$",
)
# The writer saying the subject is theirs, anywhere in the message: "asking bc mine are getting
# loud", "i get them", "same here", "for myself", "yo también los tengo". A writer word beside a
# word that points back at the subject, or at living through something, is enough.
_OWNS_IT = re.compile(
    r"\b(?:mine|my own|myself|personally|me too|same here|(?:los|las|lo) tengo|yo tambi[eé]n|me pasa)\b"
    r"|\b(?:i|i'm|im|i've|ive|i'd|me|my)\b.{0,40}?\b(?:them|they|those|these|it|one|some|same|too|also|lately|"
    r"feel\w*|felt|struggl\w*|deal\w*|battl\w*|experienc\w*|suffer\w*|fight\w*|going through|been|having|"
    r"get|got|gets)\b"
    r"|\b(?:them|they|those|these|it|same)\b.{0,40}?\b(?:i|i'm|im|i've|ive|me|my)\b",
    re.IGNORECASE,
)


def crisis_words_as_a_topic(guard: LexiconGuard, text: str, sentences: list[str]) -> list[str]:
    """The crisis words of a message when every one of them names the subject of a general
    question (see the module docstring); [] otherwise."""
    if _OWNS_IT.search(text):
        return []
    pieces = sentences or [text]
    firing = [(piece, guard.check(piece)) for piece in pieces]
    firing = [(piece, result) for piece, result in firing if result.category in ("crisis", "emergency")]
    if not firing or any(result.rule != "self_harm" for _, result in firing):
        return []
    if not all(asks_in_general(piece) for piece, _ in firing):
        return []
    words = [word for _, result in firing for word in result.matched]
    return words if all(_TOPIC.match(word) for word in words) else []

"""Splitting a patient message into the sentences and clauses it is read by.

A crisis sentence inside a long cost or booking question, or a question after a pleasantry
("thanks! how do I prepare?"), is only seen when each sentence is read on its own as well as
the whole message. Patients rarely punctuate, so besides sentence punctuation and line breaks
a clause starts after a comma or dash that is followed by a new statement ("..., i dont think
ill be around by then"). The splitter is rules only: it runs on every message and must cost
microseconds, not a parser.
"""

from __future__ import annotations

import re

MAX_SENTENCES = 12  # a very long message is still read whole; its first sentences on their own

# Sentence ends: . ! ? ; … and line breaks (an abbreviation split now and then costs nothing:
# the whole message is always read too).
_SENTENCE_END = re.compile(r"(?<=[.!?;…])\s+|\s*[\r\n]+\s*|(?<=[?!])(?=[A-Za-z¿¡])")
# A comma, dash or colon followed by a word that opens a new clause about the writer.
_CLAUSE_START = re.compile(
    r"\s*(?:,|\s-+|\s–|:)\s+(?=(?:i|im|i'm|ive|i've|id|i'd|ill|i'll|my|me|honestly|tbh|but|"
    r"and i|so i|because|cause|cuz|bc|anyway|anyways|also|btw|ngl|idk|lol|yo|ya|pero|y)\b)",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


def split_sentences(text: str) -> list[str]:
    """The message's sentences and clauses, in order; ``[text]`` when it has only one.

    Args:
        text: the patient's message.

    Returns:
        Non-empty stripped pieces holding a word (punctuation alone joins the piece before),
        at most :data:`MAX_SENTENCES`.
    """
    text = (text or "").strip()
    if not text:
        return []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        pieces.extend(p for p in _CLAUSE_START.split(sentence) if p and p.strip())
    merged: list[str] = []
    for piece in (p.strip() for p in pieces):
        if _WORD.search(piece) or not merged:
            merged.append(piece)
        else:
            merged[-1] = f"{merged[-1]} {piece}"
    return merged[:MAX_SENTENCES] or [text]

"""How a sentence asks: a question or not, about the writer or about people in general, now or
in the past.

The safety layer reads these to tell a personal medical question from a general one after a
personal preamble, and an emergency or crisis happening now from the same words in a general
question or a memory (docs/POLICY.md). Patterns, not a model: they run on every sentence and
must be explainable.
"""

from __future__ import annotations

import re

# "and is it ok...", "also, will that...": a joining word before the question word
_JOINING = r"(?:(?:and|also|but|so|plus|oh|ok|okay|btw|anyway|y|pero|tambi[eé]n)[\s,]+)*"
_QUESTION_START = re.compile(
    r"^\s*" + _JOINING + r"(?:what|whats|what's|how|hows|when|where|why|who|which|is|are|do|does|did|can|could|"
    r"will|would|should|may|any|anyone|qu[eé]|c[oó]mo|cu[aá]nt[oa]s?|cu[aá]ndo|d[oó]nde|hay|puede[ns]?)\b",
    re.IGNORECASE,
)
# A question asked in a sentence's last clause: "im on oxycodone for my back, will that interfere"
_QUESTION_CLAUSE = re.compile(
    r"[,;:]\s*" + _JOINING + r"(?:is|are|do|does|can|could|will|would|should|may)\s+"
    r"(?:that|it|this|these|those|i|my|they|he|she|ketamine|the)\b",
    re.IGNORECASE,
)
# A question that refers to a relative, or asks whether something suits the writer or is
# about something the writer described ("is this normal?"), depends on their own health.
PERSONAL_QUESTION = re.compile(
    r"\b(?:he|she|him|her|his|hers|mom|mother|dad|father|son|daughter|husband|wife|partner|kid|kids|child|"
    r"brother|sister|grandma|grandpa|mum|boyfriend|girlfriend)\b"
    r"|\b(?:for|to|on|in|with|like) me\b|\bmy (?:body|case|condition|situation|heart|health|meds|medications?|dose|"
    r"symptoms?|history)\b"
    r"|\b(?:can|could|should|would|may|will) i "
    r"(?:do|get|have|take|try|use|start|stop|be|qualify|handle|keep|continue|still)\b"
    r"|\bam i\b|\bpersonally\b|\bwill (?:it|ketamine|this|that) (?:help|work|hurt|affect|fix)\b"
    r"|^\W*(?:is|are|was|could|can|should|would) (?:this|that|these|those|it normal)\b|\bworr(?:y|ied)\b"
    # "normal" said of something ("is it normal", "normal to feel"), not before a noun ("a normal series")
    r"|\bnormal\b(?=\s*(?:$|[?.!,;:)]|(?:to|for|after|or|if|when|that|with|right|though|tho|lol|rn)\b))"
    r"|\b(?:do|must|should) i (?:need to |have to )?(?:skip|stop|hold|pause|quit|keep|continue|change|adjust|tell|"
    r"mention|report|inform|warn|bring (?:it|that|this) up)\b"
    r"|\b(?:have|need) to (?:skip|stop|hold|pause|quit) (?:it|them|that|those|my)\b"
    r"|\bpump\b|\bbreast ?(?:feed\w*|milk)\b|\bnursing\b"
    r"|\b(?:mi|mis|él|ella|puedo|tengo|estoy|tomo)\b",
    re.IGNORECASE,
)
# A relative as company, not as a patient: "can my husband sit in on the consult?"
COMPANION = re.compile(
    r"\b(?:mom|mother|dad|father|son|daughter|husband|wife|partner|brother|sister|grandma|grandpa|mum|boyfriend|"
    r"girlfriend|he|she)\s+(?:\w+\s+)?(?:sit|sits|come|comes|drive|drives|pick|picks|stay|stays|wait|waits|join|joins|"
    r"accompany|accompanies|be there|be with me|be in the room|bring|brings|take me|drop me)\b",
    re.IGNORECASE,
)
# Explicitly general: about people, not the writer ("do people usually get nauseous?").
GENERIC_SUBJECT = re.compile(
    r"\b(?:someone|somebody|anyone|anybody|people|ppl|patients?|a person|folks|most|you|one|in general|"
    r"clinics|providers|doctors|"
    r"generally|usually|typically)\b",
    re.IGNORECASE,
)
# A statement that makes a question just asked the writer's own: "asking for me", "it's for myself"
_ASKING_FOR_SELF = re.compile(
    r"\b(?:asking|asked|ask|question|this is|that'?s|thats|it'?s|its) (?:for|about) (?:me|myself|my ?self)\b"
    r"|\b(?:pregunto|es) (?:por|para) m[ií]\b",
    re.IGNORECASE,
)
_DENIED = re.compile(r"\b(?:not|no|n't|nt|isnt|aint)\s*$", re.IGNORECASE)


def asks_for_oneself(text: str) -> bool:
    """Whether the writer says a question is their own ("asking for myself"), not denying it
    ("not asking for me, writing a paper")."""
    return any(not _DENIED.search(text[: m.start()]) for m in _ASKING_FOR_SELF.finditer(text))

WRITER = re.compile(r"\b(?:i|im|i'm|ive|i've|id|i'd|me|my|mine|myself|we|us|our)\b", re.IGNORECASE)
# An emergency told as a memory ("I passed out at a blood draw once") is not happening now.
_PAST = re.compile(
    r"\b(?:once|years? ago|months? ago|as a (?:kid|child|teen)|when i was|in the past|used to|back in|last year|"
    r"last week|last weekend|last month|the other (?:day|week)|(?:\d+|a few|a couple(?: of)?|two|three|several) "
    r"(?:days|weeks) ago|went away|it passed|la semana pasada|el mes pasado|"
    r"long time ago|years back|months back|a while back|way back|in college|in high school|growing up|"
    r"hace años|hace anos|hace meses|el año pasado|"
    r"el ano pasado|de niño|de nino|de niña|de nina|cuando era|tuve|tuvo|en (?:19|20)\d\d)\b",
    re.IGNORECASE,
)
# An emergency word as something that could happen: "is there any risk of an overdose?", "can u..."
_A_RISK = re.compile(r"\b(?:risks?|chances?|possib\w*|likel\w*) (?:of|for|that)\b|\bcan (?:u|ya)\b", re.IGNORECASE)
# An emergency word as what the treatment might bring on: "would ketamine give him seizures?",
# "me puede dar convulsiones la ketamina?" asks about a risk, whoever it is about.
_CAUSED_BY_IT = re.compile(
    r"\b(?:can|could|would|will|might|may|does|do|is|puede|podr[ií]a|va a)\b.{0,40}?"
    r"\b(?:give|gives|giving|cause|causes|causing|trigger|triggers|triggering|bring on|brings on|set off|sets off|"
    r"induce|induces|lead to|leads to|provoke|provokes|dar|darle|darme|causar|causarle|causarme|provocar|"
    r"provocarle|provocarme|desencadenar)\b",
    re.IGNORECASE,
)
_NOW = re.compile(
    r"\b(?:now|rn|today|tonight|this morning|just|currently|again|still|help|hurry|asap|ahora|ahorita|"
    r"hoy|ayuda|rapido|rápido|todavía|todavia)\b", re.IGNORECASE
)


# A question told as a statement: "I was wondering how long one takes", "curious whether..."
_EMBEDDED_QUESTION = re.compile(
    r"\b(?:wondering|wonder|wondered|want(?:ed)? to know|would like to know|like to know|need to know|curious|"
    r"me preguntaba|quisiera saber|quiero saber)\s+(?:about\s+)?(?:if|whether|how|what|when|where|why|who|which|"
    r"si|c[oó]mo|cu[aá]nto|cu[aá]ndo|d[oó]nde|qu[eé])\b",
    re.IGNORECASE,
)


def is_question(sentence: str) -> bool:
    return (
        sentence.rstrip().endswith("?")
        or bool(_QUESTION_START.match(sentence))
        or bool(_QUESTION_CLAUSE.search(sentence))
        or bool(_EMBEDDED_QUESTION.search(sentence))
    )


def says_now(text: str) -> bool:
    """Whether a word of now or a plea is anywhere in the text ("he's shaking now", "help")."""
    return bool(_NOW.search(text))


def not_happening_now(piece: str) -> bool:
    """An emergency word in a general question ("can someone overdose on it?") or a memory.

    A plea is not a general question: "the baby isn't breathing, can anyone help?" is now."""
    if (
        is_question(piece)
        and (GENERIC_SUBJECT.search(piece) or _A_RISK.search(piece))
        and not (WRITER.search(piece) or PERSONAL_QUESTION.search(piece) or _NOW.search(piece))
    ):
        return True
    return told_as_a_memory(piece)


def told_as_a_memory(piece: str) -> bool:
    """Something told as past and over: "my chest felt tight last week but it went away"."""
    return bool(_PAST.search(piece)) and not _NOW.search(piece)


def before_a_risk_question(piece: str) -> str | None:
    """What a piece says before asking whether the treatment could bring something on, or None.

    "Tengo epilepsia, me puede dar convulsiones la ketamina?" asks about a risk; the words before
    the question ("Tengo epilepsia, me") must be read on their own, since "I took 10 of them, will
    it cause problems?" tells of an ingestion before asking."""
    match = _CAUSED_BY_IT.search(piece)
    if not match or not is_question(piece) or _NOW.search(piece):
        return None
    return piece[: match.start()]


# Said of this moment: a general question is not asked "tonight"
_RIGHT_NOW = re.compile(r"\b(?:now|rn|today|tonight|this morning|currently|ahora|ahorita|hoy)\b", re.IGNORECASE)
# The treatment as the subject of a question: "is ketamine used for suicidal depression?"
_ABOUT_THE_TREATMENT = re.compile(
    r"\b(?:ketamine|ketamina|spravato|esketamine|infusions?|infusiones|treatments?|tratamiento)\b", re.IGNORECASE
)


def asks_in_general(piece: str) -> bool:
    """A question about people in general or about the treatment that names no one in
    particular and nothing happening now: "can ketamine help people who have suicidal thoughts?"
    asks what the treatment does, not for help."""
    return (
        is_question(piece)
        and bool(GENERIC_SUBJECT.search(piece) or _ABOUT_THE_TREATMENT.search(piece))
        and not (WRITER.search(piece) or PERSONAL_QUESTION.search(piece) or _RIGHT_NOW.search(piece))
    )

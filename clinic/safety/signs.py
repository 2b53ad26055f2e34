"""Signs that give reason to ask about safety although no crisis phrase matched.

"On the top floor of the parking garage rn" or "on the roof of my building, 14 floors up",
sent to a clinic's text line with nothing else asked, can be the start of a crisis; the same
place in "parked on the top level, which elevator goes to your suite?" is a visitor finding the
way. "Picked the date." with nothing named can be a chosen day to die; "picked the date for my
wedding" is not. No lexicon phrase can tell these apart, so none starts the crisis protocol: the
first of each pair gets the safety check-in (988 and 911 with one question), the second an
answer. An unexplained reach-out ("not sure why I'm texting a clinic") with no question in it
is asked about too.

Final arrangements told of oneself ("wrote my will and changed the beneficiaries this week") and
things one will not need after a near day ("cancel the rest, won't need them after this weekend")
are warning signs that clinicians ask about; a lawyer's advice or a trip explains them as often,
so they are asked about too, never taken as a crisis. So is a crisis line asked about by a writer
who says they need it.
"""

from __future__ import annotations

import re

_HIGH_PLACE = re.compile(
    r"\b(?:on|at|up on|onto|atop|in|from) (?:the |a |my |this |our )?"
    r"(?:top (?:floor|level|deck|stor(?:e)?y)|roof(?:top)?|ledge|edge of (?:the |a )?\w+|top of (?:the |a |my )?"
    r"(?:building|garage|parking \w+|bridge|dam|tower|overpass|cliff|stairwell|hospital|hotel|dorm|apartment)|"
    r"balcony rail\w*|overpass|cliff)\b"
    r"|\b\d+ (?:floors|stories|storeys) up\b"
    r"|\b(?:en|desde) (?:la azotea|el techo|el [uú]ltimo piso|lo alto de\b|la orilla de\b|el borde de\b)",
    re.IGNORECASE,
)
_NOW = re.compile(
    r"\b(?:now|rn|right now|tonight|atm|at the moment|currently|ahora|ahorita|en este momento)\b", re.IGNORECASE
)
# A reason to be up there that a clinic's visitor or a worker would give
_EVERYDAY = re.compile(
    r"\b(?:fix\w*|repair\w*|shingles?|gutters?|leak\w*|roofers?|antenna|satellite|bar|restaurant|party|pool|"
    r"view|sunset|fireworks|concert|game|elevator|elevators|stairs|entrance|suite|office|lobby|parked|"
    r"spots?|spaces?|find you|get to you|which way|where do i|ascensor|estacion\w*|oficina)\b",
    re.IGNORECASE,
)
_UNSURE_WHY = re.compile(
    r"\b(?:do ?n'?t|do not|not sure|no idea|idk|dunno)\b.{0,12}?\bwhy (?:i'?m|im|i am) (?:even |still )?"
    r"(?:texting|writing|messaging|reaching out|telling (?:you|anyone|a clinic)|here)\b"
    r"|\bno s[eé] (?:ni )?(?:por|pa) ?qu[eé] (?:te |les )?(?:escribo|estoy escribiendo|mando)",
    re.IGNORECASE,
)
# A date or day chosen, naming nothing it is for: "picked the date. the 14th."
_CHOSEN_DATE = re.compile(
    r"\b(?:picked|chose|chosen|set|decided on|settled on) (?:a|the|my) (?:date|day)\s*(?:$|[.!])",
    re.IGNORECASE,
)
_PLANS = re.compile(
    r"\b(?:book\w*|appointments?|appts?|consult\w*|schedul\w*|wedding|party|trip|surgery|moving|move|vacation|"
    r"graduation|shower|birthday|reunion|baptism|funeral|closing|court|start|cita|boda|fiesta|viaje)\b",
    re.IGNORECASE,
)
# The writer's own will, beneficiaries, obituary or funeral, done or being done
_ARRANGEMENTS = re.compile(
    r"\b(?:wrote|written|writing|finished|finishing|made|making|did|done|updated|updating|signed|signing|"
    r"redid|redone|changed|changing|sorted|sorting|drew up|drawn up|drafted|drafting|paid for|prepaid|planned|planning|"
    r"picked out|chose|arranged|arranging)\b (?:up |out |all )?(?:my|me) (?:own |last )?"
    r"(?:will|last will|living will|beneficiar\w*|life insurance beneficiar\w*|obituary|obit|funeral|burial|"
    r"casket|headstone|cremation)\b"
    r"|\b(?:updated|changed|named|switched|added|listed) (?:the |all the |my )?beneficiar\w*"
    r"|\b(?:told|showed|gave|sent|left|wrote down)\b.{0,25}\b(?:where my passwords|my passwords)\b"
    r"|\b(?:hice|escrib[ií]|firm[eé]|arregl[eé]|dej[eé] listo) (?:mi|el) testamento\b",
    re.IGNORECASE,
)
# Not needing something past a near day: "won't need them after this weekend"
_NO_NEED_AFTER = re.compile(
    r"\b(?:won'?t|wont|will not|would ?n'?t|not gonna|not going to|no longer|never)\b (?:be )?"
    r"(?:need|needed|needing)\b.{0,40}?\b(?:after|past|beyond) (?:this|the|tomorrow|tonight|today|friday|saturday|"
    r"sunday|monday|tuesday|wednesday|thursday|next)\b"
    r"|\bno (?:\w+ )?(?:voy|vamos) a necesitar\b.{0,40}?\bdespu[eé]s del?\b",
    re.IGNORECASE,
)
# Loose ends tied up, unless for work, a trip or a move
_LOOSE_ENDS = re.compile(
    r"\b(?:tying|tie|tied|wrapping|wrap|wrapped) up (?:all |a few |some )?(?:the |my )?loose ends\b", re.IGNORECASE
)
_ERRANDS = re.compile(
    r"\b(?:work|job|office|project|vacation|trip|travel\w*|move|moving|semester|school|deadline|clients?|"
    r"leave|wedding|surgery|holidays?|trabajo|viaje|mudanza)\b",
    re.IGNORECASE,
)
# A crisis line asked about for oneself: "is 988 still a thing? I think I need it"
_CRISIS_LINE = re.compile(
    r"\b(?:988|741741|crisis (?:line|text line|hotline|number)|suicide (?:line|hotline|number)|"
    r"l[ií]nea (?:de crisis|de prevenci[oó]n))\b",
    re.IGNORECASE,
)
_FOR_ONESELF = re.compile(
    r"\bi (?:think |might |may |probably |really |just )?(?:need|needed|should (?:call|text)|have to (?:call|text)|"
    r"gotta (?:call|text))\b|\b(?:should|do|can|could) i (?:call|text|use|try)\b|\bnecesito\b|\bdebo llamar\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"\?|\b(?:how much|what|when|where|can i|do you|are you|is there)\b", re.IGNORECASE)


def reason_to_ask(text: str) -> str | None:
    """``"at_a_height_now"``, ``"chosen_date"``, ``"unexplained_reach_out"``,
    ``"final_arrangements"``, ``"no_need_after"`` or ``"crisis_line_for_oneself"`` when the message
    gives reason for the safety check-in although no crisis phrase matched; None otherwise."""
    if _HIGH_PLACE.search(text) and _NOW.search(text) and not _EVERYDAY.search(text):
        return "at_a_height_now"
    if _CHOSEN_DATE.search(text) and not _PLANS.search(text):
        return "chosen_date"
    if _UNSURE_WHY.search(text) and (_HIGH_PLACE.search(text) or not _QUESTION.search(_UNSURE_WHY.sub(" ", text))):
        return "unexplained_reach_out"
    if _ARRANGEMENTS.search(text) or (_LOOSE_ENDS.search(text) and not _ERRANDS.search(text)):
        return "final_arrangements"
    if _NO_NEED_AFTER.search(text):
        return "no_need_after"
    if _CRISIS_LINE.search(text) and _FOR_ONESELF.search(text):
        return "crisis_line_for_oneself"
    return None

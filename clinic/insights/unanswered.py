"""What the assistant could not answer: patient messages worth a developer's look, grouped.

Four kinds, read with SQL from the tracker store (rules and phrases in ``unanswered.yml``):

- ``fallback``: the message fell back (``nlu_fallback``) or was out of scope;
- ``low_confidence``: answered on a guess (intent confidence under ``low_confidence``);
- ``asked_for_person``: an FAQ question after whose answer the patient asked for a person;
- ``not_what_i_asked``: a question whose answer was followed by "that's not what I asked".

Messages with similar words are grouped; groups and their messages come newest first. This list
holds patient text: only admins see it, and every view is audited (the console's page does both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection

from clinic.insights._sql import EVENTS, has_events_table, json_text
from clinic.insights.intents import faq_intents
from clinic.insights.period import Period

RULES_FILE = Path(__file__).with_name("unanswered.yml")
KINDS = ("fallback", "low_confidence", "asked_for_person", "not_what_i_asked")
FALLBACK_INTENTS = ("nlu_fallback", "out_of_scope")
# Low confidence matters only where the assistant answers from the intent alone: form answers,
# yes/no and the intents that go to staff anyway are left out.
NOT_GUESSED = ("inform", "affirm", "deny", "crisis", "medical_question", "request_human", *FALLBACK_INTENTS)
PERSON_INTENT = "request_human"
PER_KIND_LIMIT = 400  # newest messages of each kind looked at
SIMILAR = 0.5  # word-set overlap (Jaccard) for two messages to share a group
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class Rules:
    low_confidence: float
    not_what_i_asked: tuple[str, ...]
    follow_up_seconds: float
    ignore_words: frozenset[str]


@lru_cache(maxsize=2)
def load_rules(path: Path = RULES_FILE) -> Rules:
    """The thresholds and phrases of ``unanswered.yml``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Rules(
        low_confidence=float(data["low_confidence"]),
        not_what_i_asked=tuple(str(p).lower() for p in data["not_what_i_asked"]),
        follow_up_seconds=float(data["follow_up_seconds"]),
        ignore_words=frozenset(str(w).lower() for w in data["ignore_words"]),
    )


@dataclass(frozen=True)
class Message:
    """A patient message the assistant could not answer (``event_id``: its row in the tracker store)."""

    event_id: int
    conversation_id: str
    at: datetime
    text: str
    kind: str
    intent: str | None  # what the assistant understood


@dataclass
class Group:
    """Messages with similar words, newest first."""

    messages: list[Message] = field(default_factory=list)
    words: frozenset[str] = frozenset()

    @property
    def newest(self) -> datetime:
        return self.messages[0].at

    @property
    def kinds(self) -> list[str]:
        return [kind for kind in KINDS if any(m.kind == kind for m in self.messages)]


def _message(row: Any, kind: str) -> Message:
    at = datetime.fromtimestamp(float(row.timestamp), timezone.utc)
    return Message(int(row.id), row.sender_id, at, (row.text or "").strip(), kind, row.intent_name)


def _columns(connection: Connection, table: Any = EVENTS) -> list[Any]:
    return [table.c.id, table.c.sender_id, table.c.timestamp, table.c.intent_name,
            json_text(connection, table.c.data, "text").label("text")]


def _in_period(period: Period, table: Any = EVENTS) -> sa.sql.ColumnElement:
    return sa.and_(table.c.type_name == "user", table.c.timestamp >= period.start.timestamp(),
                   table.c.timestamp < period.end.timestamp())


def _fallbacks(connection: Connection, period: Period) -> list[Message]:
    query = (sa.select(*_columns(connection)).where(_in_period(period), EVENTS.c.intent_name.in_(FALLBACK_INTENTS))
             .order_by(EVENTS.c.timestamp.desc()).limit(PER_KIND_LIMIT))
    return [_message(row, "fallback") for row in connection.execute(query)]


def _low_confidence(connection: Connection, period: Period, rules: Rules) -> list[Message]:
    confidence = sa.cast(json_text(connection, EVENTS.c.data, "parse_data", "intent", "confidence"), sa.Float)
    query = (
        sa.select(*_columns(connection))
        .where(_in_period(period), EVENTS.c.intent_name.notin_(NOT_GUESSED),
               EVENTS.c.intent_name.notlike("EXTERNAL%"), confidence < rules.low_confidence)
        .order_by(EVENTS.c.timestamp.desc()).limit(PER_KIND_LIMIT)
    )
    return [_message(row, "low_confidence") for row in connection.execute(query)]


def _questions_before(connection: Connection, period: Period, rules: Rules,
                      follow_up: Callable[[Any], sa.sql.ColumnElement], asked: Sequence[str] | None,
                      kind: str) -> list[Message]:
    """The patient's message just before each follow-up message (within ``follow_up_seconds``);
    ``follow_up`` gives the condition a follow-up meets, on the table it is given."""
    later = EVENTS.alias("later")
    earlier = EVENTS.alias("earlier")
    conditions = [
        earlier.c.sender_id == later.c.sender_id, earlier.c.type_name == "user",
        earlier.c.timestamp < later.c.timestamp, earlier.c.timestamp >= later.c.timestamp - rules.follow_up_seconds,
    ]
    if asked is not None:
        conditions.append(earlier.c.intent_name.in_(tuple(asked)))
    previous = sa.select(sa.func.max(earlier.c.id)).where(*conditions).scalar_subquery()
    ids = (sa.select(previous.label("id")).select_from(later).where(_in_period(period, later), follow_up(later))
           .order_by(later.c.timestamp.desc()).limit(PER_KIND_LIMIT).subquery("ids"))
    query = (sa.select(*_columns(connection)).where(EVENTS.c.id.in_(sa.select(ids.c.id)))
             .order_by(EVENTS.c.timestamp.desc()))
    return [_message(row, kind) for row in connection.execute(query)]


def _asked_for_person(connection: Connection, period: Period, rules: Rules) -> list[Message]:
    return _questions_before(connection, period, rules, lambda later: later.c.intent_name == PERSON_INTENT,
                             faq_intents(), "asked_for_person")


def _not_what_i_asked(connection: Connection, period: Period, rules: Rules) -> list[Message]:
    def said(later: Any) -> sa.sql.ColumnElement:
        lowered = sa.func.lower(later.c.data)
        return sa.or_(*(lowered.contains(phrase, autoescape=True) for phrase in rules.not_what_i_asked))

    return _questions_before(connection, period, rules, said, None, "not_what_i_asked")


def find_messages(connection: Connection, period: Period, rules: Rules | None = None) -> list[Message]:
    """Every unanswered message of the period (one entry per message, the first kind found), newest first."""
    if not has_events_table(connection):
        return []
    rules = rules or load_rules()
    found: dict[int, Message] = {}
    for batch in (_fallbacks(connection, period), _not_what_i_asked(connection, period, rules),
                  _asked_for_person(connection, period, rules), _low_confidence(connection, period, rules)):
        for message in batch:
            if message.text:
                found.setdefault(message.event_id, message)
    return sorted(found.values(), key=lambda m: (m.at, m.event_id), reverse=True)


def words(text: str, ignore: Iterable[str]) -> frozenset[str]:
    """The words of a message that tell it apart (lower case, without :data:`Rules.ignore_words`)."""
    skip = set(ignore)
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in skip)


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def group_messages(messages: Sequence[Message], rules: Rules | None = None) -> list[Group]:
    """Groups messages with similar words; ``messages`` newest first, and groups come out newest first."""
    rules = rules or load_rules()
    groups: list[Group] = []
    for message in messages:
        mine = words(message.text, rules.ignore_words)
        best = max(groups, key=lambda g: _overlap(g.words, mine), default=None)
        if best is not None and _overlap(best.words, mine) >= SIMILAR:
            best.messages.append(message)
        else:
            groups.append(Group([message], mine))
    return sorted(groups, key=lambda g: g.newest, reverse=True)

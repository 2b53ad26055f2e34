"""Closing the loop: the intent an admin gives an unanswered message, and the NLU export of them.

A mark points at the message's row in the tracker store and holds no text; the export reads the
text from there (a message purged since is left out). The export is Rasa NLU YAML in the format
of the project's training data, for a developer to review before adding it to ``data/nlu/`` and
training: nothing here trains a model or writes into ``data/``.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from clinic.clock import as_utc, utcnow
from clinic.db import InsightLabel, get_engine, session_scope
from clinic.insights._sql import EVENTS, has_events_table, json_text
from clinic.insights.intents import markable_intents
from clinic.settings import tracker_store_url

logger = logging.getLogger(__name__)

NLU_HEADER = 'version: "3.1"\nnlu:\n'
BATCH = 500
# Rasa reads [text](entity) and {"entity": ...} in an example as annotations: a patient's
# brackets are written as parentheses so the example stays plain text.
_ANNOTATION = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")"})
_SPACE = re.compile(r"\s+")


class LabelError(ValueError):
    """A mark that cannot be made (the message says why, for people)."""


@dataclass(frozen=True)
class Label:
    event_id: int
    conversation_id: str
    intent: str
    labelled_by: str | None
    labelled_at: datetime


def _event(connection: Connection, event_id: int) -> tuple[str, float] | None:
    if not has_events_table(connection):
        return None
    row = connection.execute(
        sa.select(EVENTS.c.sender_id, EVENTS.c.timestamp).where(EVENTS.c.id == event_id, EVENTS.c.type_name == "user")
    ).first()
    return (row.sender_id, float(row.timestamp)) if row is not None else None


def mark(event_id: int, intent: str, username: str | None, *, database_url: str | None = None,
         tracker_url: str | None = None) -> Label:
    """Records (or changes) the intent a patient message should have had.

    Raises:
        LabelError: the intent is not in domain.yml, or there is no such patient message.
    """
    if intent not in markable_intents():
        raise LabelError(f"{intent!r} is not an intent of the assistant.")
    with get_engine(tracker_url or tracker_store_url()).connect() as connection:
        found = _event(connection, event_id)
    if found is None:
        raise LabelError("That message is no longer stored.")
    conversation_id, timestamp = found
    now = utcnow()
    with session_scope(database_url) as session:
        row = session.execute(sa.select(InsightLabel).where(InsightLabel.event_id == event_id)).scalar_one_or_none()
        if row is None:
            row = InsightLabel(event_id=event_id, conversation_id=conversation_id,
                               message_at=datetime.fromtimestamp(timestamp, timezone.utc))
            session.add(row)
        row.intent, row.labelled_by, row.labelled_at = intent, username, now
    logger.info("insights: message %s marked as %s by %s", event_id, intent, username or "-")
    return Label(event_id, conversation_id, intent, username, now)


def labels_for(event_ids: list[int], *, database_url: str | None = None) -> dict[int, str]:
    """The intents marked on these messages (by event id)."""
    found: dict[int, str] = {}
    with session_scope(database_url) as session:
        for start in range(0, len(event_ids), BATCH):
            batch = event_ids[start:start + BATCH]
            found.update(session.execute(
                sa.select(InsightLabel.event_id, InsightLabel.intent).where(InsightLabel.event_id.in_(batch))).all())
    return found


def list_labels(*, database_url: str | None = None) -> list[Label]:
    """Every mark, oldest first."""
    with session_scope(database_url) as session:
        rows = session.execute(sa.select(InsightLabel).order_by(InsightLabel.id)).scalars()
        return [Label(r.event_id, r.conversation_id, r.intent, r.labelled_by, as_utc(r.labelled_at)) for r in rows]


def _texts(event_ids: list[int], tracker_url: str | None) -> dict[int, str]:
    texts: dict[int, str] = {}
    with get_engine(tracker_url or tracker_store_url()).connect() as connection:
        if not has_events_table(connection):
            return texts
        text = json_text(connection, EVENTS.c.data, "text")
        for start in range(0, len(event_ids), BATCH):
            batch = event_ids[start:start + BATCH]
            texts.update((int(i), t) for i, t in connection.execute(
                sa.select(EVENTS.c.id, text).where(EVENTS.c.id.in_(batch))) if t)
    return texts


def example_text(text: str) -> str:
    """A patient message as one training example line: one line, no annotation brackets."""
    return _SPACE.sub(" ", text.translate(_ANNOTATION)).strip()


def nlu_yaml(examples: dict[str, list[str]]) -> str:
    """Rasa NLU YAML of ``{intent: [example, ...]}`` (intents sorted, examples in order, no duplicates)."""
    lines = [NLU_HEADER.rstrip("\n")]
    for intent in sorted(examples):
        unique = list(dict.fromkeys(e for e in examples[intent] if e))
        if not unique:
            continue
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {example}" for example in unique]
    return "\n".join(lines) + "\n"


def export_nlu(*, database_url: str | None = None, tracker_url: str | None = None) -> tuple[str, int]:
    """The marked messages as Rasa NLU YAML, and how many examples it holds."""
    labels = list_labels(database_url=database_url)
    texts = _texts([label.event_id for label in labels], tracker_url)
    examples: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        if label.event_id in texts:
            examples[label.intent].append(example_text(texts[label.event_id]))
    document = nlu_yaml(examples)
    return document, sum(1 for line in document.splitlines() if line.startswith("    - "))


def write_export(document: str, out: Path) -> None:
    """Writes the export (a new file, or replaces one)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document, encoding="utf-8")

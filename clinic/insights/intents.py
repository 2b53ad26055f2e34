"""The assistant's intents as domain.yml declares them: FAQ topics, and what a message may be marked as."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from clinic.settings import PROJECT_DIR

DOMAIN = PROJECT_DIR / "domain.yml"
FAQ_PREFIX = "faq_"
# Set by the system, never said by a patient: not offered when marking a message.
NOT_MARKABLE = ("EXTERNAL_",)


@lru_cache(maxsize=4)
def domain_intents(domain: Path = DOMAIN) -> tuple[str, ...]:
    """Every intent of the domain, in its order."""
    data = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
    names = []
    for item in data.get("intents") or []:
        names.append(next(iter(item)) if isinstance(item, dict) else str(item))
    return tuple(names)


def faq_intents(domain: Path = DOMAIN) -> tuple[str, ...]:
    """The FAQ topics (``faq_*`` intents)."""
    return tuple(name for name in domain_intents(domain) if name.startswith(FAQ_PREFIX))


def markable_intents(domain: Path = DOMAIN) -> tuple[str, ...]:
    """The intents an admin may give an unanswered message."""
    return tuple(name for name in domain_intents(domain) if not name.startswith(NOT_MARKABLE))


def topic_label(intent: str) -> str:
    """An FAQ intent as people read it: ``faq_cost_insurance`` -> ``Cost insurance``."""
    words = intent.removeprefix(FAQ_PREFIX).replace("_", " ")
    return words[:1].upper() + words[1:]

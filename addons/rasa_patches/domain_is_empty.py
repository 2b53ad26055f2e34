"""Replaces ``Domain.is_empty``: the answer kept on the domain object.

Why: Rasa asks it for every message (before it checks the parse for intents the domain lacks),
and it renders the whole domain and an empty one as dicts and compares them: ~2.4% of the
server's time. A loaded domain does not change, so Rasa's answer is computed once per domain.
"""

from __future__ import annotations

from rasa.shared.core.domain import Domain

from addons.rasa_patches.patch import Patch, Replacement

IS_EMPTY_MEMO = "_clinic_is_empty"  # attribute of a Domain


def _domain_is_empty(self: Domain) -> bool:
    known = self.__dict__.get(IS_EMPTY_MEMO)
    if known is None:
        known = self.__dict__[IS_EMPTY_MEMO] = IS_EMPTY.original(self)
    return known


IS_EMPTY = Replacement(Domain, "is_empty", _domain_is_empty)
PATCH = Patch("domain emptiness", [IS_EMPTY])

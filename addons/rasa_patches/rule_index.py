"""Replaces ``RulePolicy._get_possible_keys``: only rules that can match the previous action
are checked.

Why: Rasa checks every rule (and every unhappy-path rule of a form) against the current turn at
each prediction, twice per prediction: ~10% of the server's time. A rule whose last turn asks for
another previous action than the conversation's cannot pass that check, so the rules are indexed
by the action their last turn asks for, and only those of the conversation's previous action (and
those asking for none) are checked. The checks (``self._is_rule_applicable``) and the turns
checked are Rasa's, so the same rules are found.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET
from rasa.shared.nlu.constants import ACTION_NAME

from addons.rasa_patches.patch import Patch, Replacement
from addons.rasa_patches.rule_checks import reversed_rule


def _get_possible_keys(self: RulePolicy, lookup: dict[str, str], states: list[dict[str, Any]]) -> set[str]:
    if not states:
        return set(lookup.keys())
    # Rasa's loop, except that the rules checked against the current turn are only those that
    # can match its previous action (any other is certain to fail Rasa's check)
    previous_action = states[-1].get(PREVIOUS_ACTION) or {}
    by_action = _rules_by_last_action(self, lookup)
    name = previous_action.get(ACTION_NAME)
    possible_keys = [*by_action.get(name, ()), *by_action[None]] if isinstance(name, str) else by_action[None]
    for i, state in enumerate(reversed(states)):
        possible_keys = [key for key in possible_keys if self._is_rule_applicable(key, i, state)]
    return set(possible_keys)


# {id(lookup): (the lookup itself, its keys, the index)}. Keyed by the dict's id, but an entry is
# used only while it is the very same dict object (held here, so its id is not reused) with the
# same keys: a lookup changed in place is indexed again.
_rule_indexes: dict[int, tuple[dict[str, str], frozenset[str], dict[str | None, list[str]]]] = {}


def _rules_by_last_action(policy: RulePolicy, lookup: dict[str, str]) -> dict[str | None, list[str]]:
    """The lookup's rules by the action name their last turn requires as previous action (``None``:
    no name required, or no turns), remembered for as long as the lookup holds the same rules."""
    kept = _rule_indexes.get(id(lookup))
    if kept is not None and kept[0] is lookup and kept[1] == lookup.keys():
        return kept[2]
    index: dict[str | None, list[str]] = {None: []}
    for key in lookup:
        rule = reversed_rule(policy, key)
        name = (rule[0].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME) if rule else None
        required = isinstance(name, str) and name and name != SHOULD_NOT_BE_SET
        index.setdefault(name if required else None, []).append(key)
    if len(_rule_indexes) > 16:
        _rule_indexes.clear()
    _rule_indexes[id(lookup)] = (lookup, frozenset(lookup), index)
    return index


PATCH = Patch("rule index", [Replacement(RulePolicy, "_get_possible_keys", _get_possible_keys)],
              reset=_rule_indexes.clear)

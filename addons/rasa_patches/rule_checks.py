"""Replaces ``RulePolicy._is_rule_applicable``: each rule's reversed states kept in a dict.

Why: Rasa runs this check for every rule at every turn of the conversation, twice per
prediction, and each time reverses a copy of the rule's states (behind an LRU cache): ~90,000
calls per 200 messages. Here each rule's reversed states are kept in a plain dict, keyed by the
rule's key (the rule's states as text, so fixed once the model is loaded; another model's rules
start the dict over when it grows large); the checks themselves are Rasa's.
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import PREVIOUS_ACTION

from addons.rasa_patches.patch import Patch, Replacement

_reversed_rules: dict[str, list[dict[str, Any]]] = {}


def reversed_rule(policy: RulePolicy, rule_key: str) -> list[dict[str, Any]]:
    """The rule's states, last turn first (also used by :mod:`.rule_index`)."""
    reversed_rule_states = _reversed_rules.get(rule_key)
    if reversed_rule_states is None:
        if len(_reversed_rules) > 20_000:  # another model's rules: start over
            _reversed_rules.clear()
        reversed_rule_states = _reversed_rules[rule_key] = list(reversed(policy._rule_key_to_state(rule_key)))
    return reversed_rule_states


def _is_rule_applicable(self: RulePolicy, rule_key: str, turn_index: int, conversation_state: dict[str, Any]) -> bool:
    reversed_rule_states = reversed_rule(self, rule_key)
    # from here on, Rasa's RulePolicy._is_rule_applicable
    if turn_index >= len(reversed_rule_states):
        return True
    current_previous_action = conversation_state.get(PREVIOUS_ACTION)
    rule_previous_action = reversed_rule_states[turn_index].get(PREVIOUS_ACTION)
    if not rule_previous_action and not current_previous_action:
        return True
    if not rule_previous_action or not current_previous_action:
        return False
    return self._does_rule_match_state(reversed_rule_states[turn_index], conversation_state)


PATCH = Patch("rule checks", [Replacement(RulePolicy, "_is_rule_applicable", _is_rule_applicable)],
              reset=_reversed_rules.clear)

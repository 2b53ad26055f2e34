"""addons.rasa_patches.rule_checks and rule_index: the rules found at each turn are Rasa's."""

from __future__ import annotations

from typing import Any

from tests.addons.rasa_patches.helpers import original, rule_policy, story_trackers


def test_rules_found_for_each_conversation_turn_are_rasas(patched: None, agent: Any) -> None:
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH

    domain, trackers = story_trackers()
    policy = rule_policy(agent)
    cases = found = 0
    for tracker in trackers:
        for use_text in (False, True):
            states = policy._prediction_states(tracker, domain, use_text, rule_only_data=policy._get_rule_only_data())
            for lookup in (policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH]):
                ours = policy._get_possible_keys(lookup, states)
                assert ours == original(lambda lookup=lookup, states=states: policy._get_possible_keys(lookup, states))
                cases += 1
                found += bool(ours)
    assert cases > 200 and found > 50  # rules found in many turns, none in others
    for states in ([], [{}], [{"prev_action": {"action_text": "hi"}}], [{"user": {"intent": "greet"}}]):
        for lookup in (policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH], {}):
            theirs = original(lambda lookup=lookup, states=states: policy._get_possible_keys(lookup, states))
            assert policy._get_possible_keys(lookup, states) == theirs


def test_rules_are_indexed_again_when_the_lookup_changes(patched: None, agent: Any) -> None:
    from rasa.core.policies.rule_policy import RULES

    domain, trackers = story_trackers()
    policy = rule_policy(agent)
    states = policy._prediction_states(trackers[3], domain, rule_only_data=policy._get_rule_only_data())
    lookup = dict(policy.lookup[RULES])
    matched = policy._get_possible_keys(lookup, states)
    assert matched
    for key in matched:
        del lookup[key]
    lookup.update({key + " ": "x" for key in list(lookup)[: len(matched)]})  # same size, other rules
    assert policy._get_possible_keys(lookup, states) == original(lambda: policy._get_possible_keys(lookup, states))

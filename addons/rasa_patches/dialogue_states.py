"""Replaces ``Domain.states_for_tracker_history``: one replay of the conversation per tracker.

Why: Rasa replays the whole conversation to build the dialogue states, once per policy and twice
in the rule policy (with and without the message's text): ~28% of a FAQ turn in-process. The rule
policy's second call asks for exactly the states of the first; here a result is remembered on the
tracker object for as long as its events are the same ones and the same arguments are asked for,
and each caller gets its own copy (callers edit the last state). The rule and the memoization
policy ask with different arguments (rule-only turns kept or left out) for the same replay: the
replay and each turn's state are made once per tracker, and both answers are built from them by
Rasa's own loop (:func:`_states_of_turns`). ``omit_unset_slots=True`` takes Rasa's code.

Uses Rasa's private helpers of ``Domain`` (``_get_prev_action_sub_state``, ``_clean_state``,
``_remove_rule_only_features``, ``_substitute_rule_only_user_input``) as Rasa 3.6.21's method does.
"""

from __future__ import annotations

from typing import Any

from rasa.shared.core.constants import PREVIOUS_ACTION
from rasa.shared.core.domain import Domain

from addons.rasa_patches.patch import Patch, Replacement

STATES_MEMO = "_clinic_states"  # attribute of a tracker: (mark, {arguments: states, "turns": turns})


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    # a state is {sub-state: {key: str | tuple | float}}: two levels hold everything mutable
    return {key: dict(sub) for key, sub in state.items()}


def _copy_states(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_copy_state(state) for state in states]


def _states_for_tracker_history(self: Domain, tracker: Any, omit_unset_slots: bool = False,
                                ignore_rule_only_turns: bool = False,
                                rule_only_data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    events = tracker.events
    # The memo is keyed by object ids and a count, not by the events' content. That is valid
    # only because a tracker's events are append-only: Rasa adds events (``tracker.update``
    # appends; a capped history drops the oldest, which changes the last event too) and never
    # edits, replaces or removes one in place, so "same domain object, same number of events,
    # same last event object" means "same events". Code that edits a tracker's events in place,
    # or swaps in another sequence of the same length ending with the same event object, must
    # delete the memo (``tracker.__dict__.pop(STATES_MEMO, None)``). The last event's id cannot
    # be reused while the tracker holds that event. The domain's id could be, by a new domain
    # after the old one is freed; the server keeps one domain per loaded model and builds a new
    # tracker object for every message, so a memo does not outlive the domain it was made with.
    mark = (id(self), len(events), id(events[-1]) if events else None)
    memo = tracker.__dict__.get(STATES_MEMO)
    if memo is None or memo[0] != mark:
        memo = tracker.__dict__[STATES_MEMO] = (mark, {})
    key = (omit_unset_slots, ignore_rule_only_turns,
           None if rule_only_data is None else repr(sorted(rule_only_data.items())))
    states = memo[1].get(key)
    if states is None:
        if omit_unset_slots:
            states = STATES.original(
                self, tracker, omit_unset_slots=omit_unset_slots, ignore_rule_only_turns=ignore_rule_only_turns,
                rule_only_data=rule_only_data)
        else:
            turns = memo[1].get("turns")
            if turns is None:
                turns = memo[1]["turns"] = _prior_turns(self, tracker)
            states = _states_of_turns(self, turns, ignore_rule_only_turns, rule_only_data)
        memo[1][key] = states
    return _copy_states(states)


def _prior_turns(domain: Domain, tracker: Any) -> list[tuple[Any, ...]]:
    """What Rasa's ``states_for_tracker_history`` reads of each prior tracker, from one replay."""
    return [(hide_rule_turn, domain._get_prev_action_sub_state(tr), tr.followup_action, tr.latest_action_name,
             tr.active_loop_name, domain.get_active_state(tr))
            for tr, hide_rule_turn in tracker.generate_all_prior_trackers()]


def _states_of_turns(domain: Domain, turns: list[tuple[Any, ...]], ignore_rule_only_turns: bool,
                     rule_only_data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rasa's ``states_for_tracker_history`` loop (``omit_unset_slots=False``) over the turns."""
    if not ignore_rule_only_turns:
        return [domain._clean_state(active) for *_, active in turns]
    states: list[dict[str, Any]] = []
    last_ml_action_sub_state = None
    turn_was_hidden = False
    for hide_rule_turn, prev_action, followup_action, latest_action_name, active_loop_name, active in turns:
        if not turn_was_hidden:
            last_ml_action_sub_state = prev_action
        if not followup_action and latest_action_name != active_loop_name:
            turn_was_hidden = hide_rule_turn
        if turn_was_hidden:
            continue
        state = _copy_state(active)  # edited below; the turns stay as they are
        domain._remove_rule_only_features(state, rule_only_data)
        if states:
            domain._substitute_rule_only_user_input(state, states[-1])
        if last_ml_action_sub_state:
            state[PREVIOUS_ACTION] = last_ml_action_sub_state
        states.append(domain._clean_state(state))
    return states


STATES = Replacement(Domain, "states_for_tracker_history", _states_for_tracker_history)
PATCH = Patch("dialogue states", [STATES])

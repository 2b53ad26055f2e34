"""Rasa 3.6 hot spots made cheap, with the same results (installed by the Rasa server's NLG).

Measured with py-spy on the Rasa server under ``make bench`` (README "Performance"):

1. ``RemoteAction._validate_action_result`` calls ``jsonschema.validate(reply, spec)`` on every
   custom action's reply. ``jsonschema.validate`` first checks the (constant) spec against the
   JSON-Schema metaschema, then builds a validator: ~22 ms of CPU per action call on this machine,
   about 30-40% of the Rasa server's busy time under load (every booking-form question and every
   escalation calls the action server). Here the spec is checked and the validator built once; each
   reply is still validated against the same schema and the same error (``best_match``, with
   Rasa's message appended) is raised. ~1 ms per call.
2. ``Event.resolve_by_type`` walks every ``Event`` subclass (recursively) for each event read from
   the tracker store or an action's reply. Here the class found for a type name is remembered;
   unknown names still take Rasa's own path (so subclasses defined later are still found, and
   errors and defaults are unchanged).
3. ``DaskGraphRunner.run`` (NLU parse and every action prediction: three or more graph runs per
   message) rebuilds the minimal graph schema and a dask task graph and hands it to dask's
   scheduler each time: ~11% of the server's busy time under load, more than the NLU featurizers.
   Here the minimal schema is computed once per set of targets and the nodes are called directly,
   each once, dependencies first, with the same inputs (``(node name, output)`` tuples) and the
   same result (``{target: output}``); a component's error propagates as before.
4. ``EndpointConfig.request`` (every custom action call) opens a new HTTP session and TCP
   connection to the action server and closes both afterwards. Each of those steps waits for a
   turn of the busy event loop, so under load an action call took ~150 ms for ~5 ms of work.
   Here each endpoint keeps one session per event loop, with keep-alive connections that are
   dropped after 2 s idle (before the server's own 5 s keep-alive ends, so a reused connection
   is never one the server is closing). Same headers, auth, timeout, errors and results.
5. ``Domain.states_for_tracker_history`` replays the whole conversation to build the dialogue
   states, once per policy and twice in the rule policy (with and without the message's text):
   ~28% of a FAQ turn in-process. The rule policy's second call asks for exactly the states of
   the first; here a result is remembered on the tracker object for as long as its events are
   the same ones (same count, same last event) and the same arguments are asked for, and each
   caller gets its own copy (callers edit the last state). The rule and the memoization policy
   ask with different arguments (rule-only turns kept or left out) for the same replay: the
   replay and each turn's state are made once per tracker and both answers are built from them
   by Rasa's own loop.
6. Every tracker Rasa builds (one per action while replaying a conversation for the states, one
   per action run, one per read) copies each slot with ``copy.copy``, which goes through the
   pickle protocol: ~4% of the server's time. Rasa's slot classes define no copy or pickle
   methods, so ``copy.copy`` makes a new object of the same class with the same ``__dict__``;
   ``Slot.__copy__`` does just that directly (a subclass with its own pickle methods keeps the
   pickle protocol).
7. ``RulePolicy._is_rule_applicable`` runs for every rule at every turn of the conversation,
   twice per prediction, and each time reverses a copy of the rule's states (behind an LRU
   cache): ~90,000 calls per 200 messages. Here each rule's reversed states are kept in a plain
   dict (rules are fixed once the model is loaded); the checks themselves are Rasa's.
8. ``Domain.is_empty`` (asked for every message, before Rasa checks the parse for intents the
   domain lacks) renders the whole domain and an empty one as dicts and compares them: ~2.4% of
   the server's time. A loaded domain does not change, so the answer is kept on the object.
9. ``DialogueStateTracker.copy`` (the message processor makes one before every action it runs,
   ``action_listen`` included) builds an empty tracker and replays every event of the
   conversation into it, so a turn late in a booking replayed the conversation several times.
   A tracker's state is exactly what replaying its events gives (Rasa's own rule: "MUST be
   re-creatable by processing all the events"), so here the copy takes that state directly: the
   same events, copies of the slots, the loop and the latest action, the same latest messages,
   and no ``model_id`` / ``assistant_id`` / ``sender_source`` (a replayed copy has none). Trackers
   that are not plain ``DialogueStateTracker`` objects, that cap their event history or that
   carry attributes this copy does not know take Rasa's replay.
10. The message processor, the rule policy and the memoization policy deep-copy the dialogue
   states, events and parse data they pass to ``structlogger.debug`` (so a debug log shows them
   as they were), at every prediction and every action, also when debug logging is off and the
   call does nothing: ~0.27 ms per message in-process. Those three modules use ``copy`` for
   nothing else, so they now see a ``copy`` whose ``deepcopy`` copies only while structlog's
   debug level is on (``rasa run --debug`` logs the same as before) and otherwise hands the
   object to the no-op call as it is.
11. ``RulePolicy._get_possible_keys`` checks every rule (and every unhappy-path rule of a form)
   against the current turn at each prediction, twice per prediction: ~10% of the server's time.
   A rule whose last turn asks for another previous action than the conversation's cannot pass
   that check, so the rules are indexed by the action their last turn asks for and only those of
   the conversation's previous action (and those asking for none) are checked; the checks and
   the turns checked are Rasa's, so the same rules are found.
12. The requests to the action server carry the conversation's whole tracker state (and the
   domain for the form validators) as JSON, encoded by the standard library's pure-Python
   encoder for aiohttp: ~6% of the server's time. The kept sessions (4.) encode with ujson (a
   Rasa dependency) instead: the same JSON values, without spaces; anything ujson refuses (NaN,
   integers beyond 64 bits) is encoded by ``json.dumps`` as before.

:func:`install` is idempotent; :func:`uninstall` restores Rasa's originals (tests).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import importlib
import json
import threading
import time
import types
from collections import deque
from typing import Any

import aiohttp
import ujson

from rasa.core.actions.action import RemoteAction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.constants import DEFAULT_SENDER_ID
from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, Event, UserUttered
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ACTION_NAME
from rasa.utils.endpoints import EndpointConfig

from addons.tracker_store import STORED

_lock = threading.Lock()
_originals: dict[str, Any] = {}


def _spec_is_rasas(action: RemoteAction) -> bool:
    return type(action).action_response_format_spec is _originals["spec_function"]


class _ActionReplyValidator:
    """The validator of Rasa's action-reply schema, built (and the schema checked) once."""

    def __init__(self) -> None:
        from jsonschema.validators import validator_for

        schema = RemoteAction.action_response_format_spec()
        cls = validator_for(schema)
        cls.check_schema(schema)  # what jsonschema.validate does on every call
        self._validator = cls(schema)

    def validate(self, instance: Any) -> None:
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(instance))
        if error is not None:
            raise error


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    if not _spec_is_rasas(self):  # a subclass with its own schema: Rasa's own code
        return _originals["validate_action_result"](self, result)
    from jsonschema import ValidationError

    from rasa.core.actions.action import DOCS_BASE_URL

    try:
        _reply_validator().validate(result)
        return True
    except ValidationError as e:  # exactly as RemoteAction._validate_action_result
        e.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


_validator: _ActionReplyValidator | None = None


def _reply_validator() -> _ActionReplyValidator:
    global _validator
    if _validator is None:
        _validator = _ActionReplyValidator()
    return _validator


_event_types: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    found = _event_types.get(type_name)
    if found is not None:
        return found
    resolved = _originals["resolve_by_type"](type_name, default)
    if resolved is not None and resolved is not default and getattr(resolved, "type_name", None) == type_name:
        _event_types[type_name] = resolved
    return resolved


def _run_graph(self: DaskGraphRunner, inputs: dict[str, Any] | None = None,
               targets: list[str] | None = None) -> dict[str, Any]:
    run_targets = targets if targets else self._graph_schema.target_names
    schemas = self.__dict__.setdefault("_clinic_minimal_schemas", {})
    schema = schemas.get(tuple(run_targets))
    if schema is None:
        schema = schemas[tuple(run_targets)] = self._graph_schema.minimal_graph_schema(run_targets)
    nodes = schema.nodes
    values: dict[str, tuple[str, Any]] = {}
    for name, value in (inputs or {}).items():  # Rasa's check, then the input replaces any node
        if isinstance(value, str) and (value in nodes or value in values):
            raise GraphRunError(
                f"Input value '{value}' clashes with a node name. Make sure "
                f"that none of the input names passed to the `run` method are the "
                f"same as node names in the graph schema."
            )
        values[name] = (name, value)

    def compute(name: str) -> tuple[str, Any]:
        found = values.get(name)
        if found is None:
            needs = nodes[name].needs.values()
            found = values[name] = self._instantiated_nodes[name](
                *(compute(need) if need in values or need in nodes else need for need in needs)
            )
        return found

    try:
        return dict(compute(target) for target in run_targets)
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e


KEEPALIVE_S = 2.0


class _KeptSession:
    """``async with`` gives the endpoint's long-lived session and leaves it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        return None


def _session(self: EndpointConfig) -> Any:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not in a coroutine: Rasa's own (closed after use)
        return _originals["session"](self)
    sessions = self.__dict__.setdefault("_clinic_sessions", {})
    kept = sessions.get(id(loop))
    if kept is None or kept.closed:
        for other in list(sessions):
            if sessions[other].closed:
                del sessions[other]
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
        from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

        kept = sessions[id(loop)] = aiohttp.ClientSession(
            headers=self.headers, auth=auth, timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S), json_serialize=encode_json,
        )
    return _KeptSession(kept)


def encode_json(value: Any) -> str:
    """JSON text of ``value``: ujson's, or the standard library's where ujson refuses it."""
    try:
        return ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False, reject_bytes=True)
    except (TypeError, OverflowError, ValueError):
        return json.dumps(value)


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    # a state is {sub-state: {key: str | tuple | float}}: two levels hold everything mutable
    return {key: dict(sub) for key, sub in state.items()}


def _copy_states(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_copy_state(state) for state in states]


STATES_MEMO = "_clinic_states"


def _states_for_tracker_history(self: Domain, tracker: Any, omit_unset_slots: bool = False,
                                ignore_rule_only_turns: bool = False,
                                rule_only_data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    events = tracker.events
    mark = (id(self), len(events), id(events[-1]) if events else None)
    memo = tracker.__dict__.get(STATES_MEMO)
    if memo is None or memo[0] != mark:
        memo = tracker.__dict__[STATES_MEMO] = (mark, {})
    key = (omit_unset_slots, ignore_rule_only_turns,
           None if rule_only_data is None else repr(sorted(rule_only_data.items())))
    states = memo[1].get(key)
    if states is None:
        if omit_unset_slots:
            states = _originals["states_for_tracker_history"](
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
        if not followup_action and not latest_action_name == active_loop_name:
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


_PICKLE_METHODS = ("__reduce_ex__", "__reduce__", "__getstate__", "__setstate__", "__getnewargs_ex__", "__getnewargs__")


def _plain(cls: type) -> bool:
    """No class between ``cls`` and ``object`` defines a pickle method (true for Rasa's slots)."""
    return not any(name in vars(klass) for klass in cls.__mro__[:-1] for name in _PICKLE_METHODS)


_plain_slot_classes: dict[type, bool] = {}


def _copy_slot(self: Slot) -> Slot:
    cls = type(self)
    plain = _plain_slot_classes.get(cls)
    if plain is None:
        plain = _plain_slot_classes[cls] = _plain(cls)
    if not plain:  # what copy.copy does without __copy__
        import copy

        return copy._reconstruct(self, None, *cls.__reduce_ex__(self, 4))  # type: ignore[attr-defined]
    new = cls.__new__(cls)
    new.__dict__.update(self.__dict__)
    return new


_reversed_rules: dict[str, list[dict[str, Any]]] = {}


def _reversed_rule(policy: RulePolicy, rule_key: str) -> list[dict[str, Any]]:
    reversed_rule_states = _reversed_rules.get(rule_key)
    if reversed_rule_states is None:
        if len(_reversed_rules) > 20_000:  # another model's rules: start over
            _reversed_rules.clear()
        reversed_rule_states = _reversed_rules[rule_key] = list(reversed(policy._rule_key_to_state(rule_key)))
    return reversed_rule_states


def _is_rule_applicable(self: RulePolicy, rule_key: str, turn_index: int, conversation_state: dict[str, Any]) -> bool:
    reversed_rule_states = _reversed_rule(self, rule_key)
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


_rule_indexes: dict[int, tuple[dict[str, str], frozenset[str], dict[str | None, list[str]]]] = {}


def _rules_by_last_action(policy: RulePolicy, lookup: dict[str, str]) -> dict[str | None, list[str]]:
    """The lookup's rules by the action name their last turn requires as previous action (``None``:
    no name required, or no turns), remembered for as long as the lookup holds the same rules."""
    kept = _rule_indexes.get(id(lookup))
    if kept is not None and kept[0] is lookup and kept[1] == lookup.keys():
        return kept[2]
    index: dict[str | None, list[str]] = {None: []}
    for key in lookup:
        rule = _reversed_rule(policy, key)
        name = (rule[0].get(PREVIOUS_ACTION) or {}).get(ACTION_NAME) if rule else None
        required = isinstance(name, str) and name and name != SHOULD_NOT_BE_SET
        index.setdefault(name if required else None, []).append(key)
    if len(_rule_indexes) > 16:
        _rule_indexes.clear()
    _rule_indexes[id(lookup)] = (lookup, frozenset(lookup), index)
    return index


def _domain_is_empty(self: Domain) -> bool:
    known = self.__dict__.get("_clinic_is_empty")
    if known is None:
        known = self.__dict__["_clinic_is_empty"] = _originals["domain_is_empty"](self)
    return known


# Everything a DialogueStateTracker holds (Rasa 3.6 ``__init__``), and what this project keeps on
# one (the states memo above, the tracker store's count of stored events): not copied, as replay.
_TRACKER_ATTRIBUTES = frozenset({
    "_max_event_history", "events", "sender_id", "slots", "sender_source", "is_rule_tracker", "_paused",
    "followup_action", "latest_action", "latest_message", "latest_bot_utterance", "active_loop", "model_id",
    "assistant_id", STATES_MEMO, STORED,
})


def _copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
    state = self.__dict__
    if (type(self) is not DialogueStateTracker or self._max_event_history is not None
            or type(self.slots) is not dict or not _TRACKER_ATTRIBUTES.issuperset(state)):
        return _originals["tracker_copy"](self)
    events = self.events
    new = DialogueStateTracker.__new__(DialogueStateTracker)
    new.__dict__.update(
        _max_event_history=None,
        events=deque(events),
        sender_id=self.sender_id or DEFAULT_SENDER_ID,  # as init_copy
        slots={name: copy.copy(slot) for name, slot in self.slots.items()},
        sender_source=None,
        is_rule_tracker=self.is_rule_tracker,
        _paused=self._paused,
        followup_action=self.followup_action,
        latest_action=None if self.latest_action is None else dict(self.latest_action),
        latest_message=_event_or_own_copy(self.latest_message, events, UserUttered),
        latest_bot_utterance=_event_or_own_copy(self.latest_bot_utterance, events, BotUttered),
        active_loop=None if self.active_loop is None else dataclasses.replace(self.active_loop),
        model_id=None,
        assistant_id=None,
    )
    return new


def _event_or_own_copy(latest: Any, events: deque, kind: type) -> Any:
    """A replayed copy points at the same event when the latest message is one of the events,
    and at a placeholder of its own, made during the replay, when not (``UserUttered.empty()``
    after a reset, possibly edited by a later event)."""
    if latest is None:
        return None
    for event in reversed(events):
        if event is latest:
            return latest
    if type(latest) is not kind:
        return latest
    placeholder = copy.copy(latest)
    placeholder.timestamp = time.time()
    return placeholder


# Rasa modules whose only use of ``copy.deepcopy`` is for arguments of structlog debug calls.
_DEBUG_COPYING_MODULES = ("rasa.core.processor", "rasa.core.policies.rule_policy", "rasa.core.policies.memoization")


class _DebugOnlyCopy(types.ModuleType):
    """The ``copy`` module, except that ``deepcopy`` copies only while structlog logs debug."""

    def __init__(self) -> None:
        super().__init__("copy")
        self.__dict__.update({k: v for k, v in vars(copy).items() if not k.startswith("__")})
        self.deepcopy = _deepcopy_if_debug_logged


def _deepcopy_if_debug_logged(value: Any, memo: dict[int, Any] | None = None) -> Any:
    return copy.deepcopy(value, memo) if _structlog_debug_on() else value


def _structlog_debug_on() -> bool:
    import structlog

    wrapper = structlog.get_config().get("wrapper_class")
    debug = getattr(wrapper, "debug", None)
    return debug is None or getattr(debug, "__name__", "") != "_nop"


def install() -> None:
    """Replaces the Rasa methods above (once per process)."""
    with _lock:
        if _originals:
            return
        _originals["validate_action_result"] = RemoteAction._validate_action_result
        _originals["spec_function"] = RemoteAction.action_response_format_spec
        _originals["resolve_by_type"] = Event.resolve_by_type
        _originals["run_graph"] = DaskGraphRunner.run
        _originals["session"] = EndpointConfig.session
        _originals["states_for_tracker_history"] = Domain.states_for_tracker_history
        _originals["slot_copy"] = vars(Slot).get("__copy__")
        _originals["is_rule_applicable"] = RulePolicy._is_rule_applicable
        _originals["domain_is_empty"] = Domain.is_empty
        _originals["tracker_copy"] = DialogueStateTracker.copy
        _originals["get_possible_keys"] = RulePolicy._get_possible_keys
        RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
        Event.resolve_by_type = staticmethod(_resolve_by_type)  # type: ignore[method-assign]
        DaskGraphRunner.run = _run_graph  # type: ignore[method-assign]
        EndpointConfig.session = _session  # type: ignore[method-assign]
        Domain.states_for_tracker_history = _states_for_tracker_history  # type: ignore[method-assign]
        Slot.__copy__ = _copy_slot  # type: ignore[attr-defined]
        RulePolicy._is_rule_applicable = _is_rule_applicable  # type: ignore[method-assign]
        Domain.is_empty = _domain_is_empty  # type: ignore[method-assign]
        DialogueStateTracker.copy = _copy_tracker  # type: ignore[method-assign]
        RulePolicy._get_possible_keys = _get_possible_keys  # type: ignore[method-assign]
        for name in _DEBUG_COPYING_MODULES:
            module = importlib.import_module(name)
            _originals[f"copy module of {name}"] = module.copy
            module.copy = _DebugOnlyCopy()  # type: ignore[attr-defined]


def uninstall() -> None:
    """Puts Rasa's originals back."""
    with _lock:
        if not _originals:
            return
        RemoteAction._validate_action_result = _originals.pop("validate_action_result")  # type: ignore[method-assign]
        Event.resolve_by_type = staticmethod(_originals.pop("resolve_by_type"))  # type: ignore[method-assign]
        DaskGraphRunner.run = _originals.pop("run_graph")  # type: ignore[method-assign]
        EndpointConfig.session = _originals.pop("session")  # type: ignore[method-assign]
        Domain.states_for_tracker_history = _originals.pop("states_for_tracker_history")  # type: ignore[method-assign]
        RulePolicy._is_rule_applicable = _originals.pop("is_rule_applicable")  # type: ignore[method-assign]
        Domain.is_empty = _originals.pop("domain_is_empty")  # type: ignore[method-assign]
        DialogueStateTracker.copy = _originals.pop("tracker_copy")  # type: ignore[method-assign]
        RulePolicy._get_possible_keys = _originals.pop("get_possible_keys")  # type: ignore[method-assign]
        for name in _DEBUG_COPYING_MODULES:
            importlib.import_module(name).copy = _originals.pop(f"copy module of {name}")  # type: ignore[attr-defined]
        slot_copy = _originals.pop("slot_copy")
        if slot_copy is None:
            del Slot.__copy__  # type: ignore[attr-defined]
        else:
            Slot.__copy__ = slot_copy  # type: ignore[attr-defined]
        _originals.clear()
        _event_types.clear()


def installed() -> bool:
    return bool(_originals)

"""addons.speedups: the patched Rasa methods give exactly Rasa's results (and install once)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig

from addons import speedups


@pytest.fixture
def patched() -> Iterator[None]:
    was_installed = speedups.installed()
    speedups.install()
    yield
    if not was_installed:
        speedups.uninstall()


def original(call: Any) -> Any:
    """Runs ``call`` with Rasa's own methods, then restores the previous state."""
    was_installed = speedups.installed()
    speedups.uninstall()
    try:
        return call()
    finally:
        if was_installed:
            speedups.install()


def action() -> RemoteAction:
    return RemoteAction("action_booking_form_validate", EndpointConfig("http://127.0.0.1:1/webhook"))


VALID_REPLIES = [
    {},
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "full_name", "value": "Maria Lopez", "timestamp": None}],
     "responses": [{"response": "utter_ask_phone", "buttons": [], "text": None}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "action_listen"}]},
]
INVALID_REPLIES = [
    {"events": "not a list"},
    {"events": [{"event": "slot"}]},  # a slot event without a name
    {"events": [{"event": "no_such_event"}]},
    {"responses": ["not an object"]},
    [],
]


@pytest.mark.parametrize("reply", VALID_REPLIES)
def test_valid_action_replies_pass_as_before(patched: None, reply: dict) -> None:
    assert action()._validate_action_result(reply) is True
    assert original(lambda: action()._validate_action_result(reply)) is True


@pytest.mark.parametrize("reply", INVALID_REPLIES)
def test_invalid_action_replies_raise_rasas_error(patched: None, reply: Any) -> None:
    with pytest.raises(ValidationError) as ours:
        action()._validate_action_result(reply)

    def rasas() -> ValidationError:
        with pytest.raises(ValidationError) as theirs:
            action()._validate_action_result(reply)
        return theirs.value

    expected = original(rasas)
    assert ours.value.message == expected.message
    assert "Failed to validate Action server response" in ours.value.message
    assert list(ours.value.path) == list(expected.path)


def test_an_action_with_its_own_schema_keeps_rasas_code(patched: None) -> None:
    class Strict(RemoteAction):
        @staticmethod
        def action_response_format_spec() -> dict[str, Any]:
            return {"type": "object", "required": ["events"]}

    strict = Strict("action_x", EndpointConfig("http://127.0.0.1:1/webhook"))
    assert strict._validate_action_result({"events": []}) is True
    with pytest.raises(ValidationError):
        strict._validate_action_result({"responses": []})


def test_event_types_resolve_to_rasas_classes(patched: None) -> None:
    names = {cls.type_name for cls in all_subclasses(Event)}
    ours = {name: Event.resolve_by_type(name) for name in names}
    ours_again = {name: Event.resolve_by_type(name) for name in names}  # from the cache
    theirs = original(lambda: {name: Event.resolve_by_type(name) for name in names})
    assert ours == theirs == ours_again
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=Event) is Event
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")


def test_install_is_idempotent_and_uninstall_restores_rasa() -> None:
    was_installed = speedups.installed()
    speedups.uninstall()
    from rasa.engine.runner.dask import DaskGraphRunner

    import importlib

    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.slots import Slot
    from rasa.shared.core.trackers import DialogueStateTracker

    def methods() -> tuple[Any, ...]:
        return (RemoteAction._validate_action_result, Event.resolve_by_type, DaskGraphRunner.run,
                EndpointConfig.session, Domain.states_for_tracker_history, RulePolicy._is_rule_applicable,
                Domain.is_empty, getattr(Slot, "__copy__", None), DialogueStateTracker.copy,
                RulePolicy._get_possible_keys,
                *(importlib.import_module(name).copy for name in speedups._DEBUG_COPYING_MODULES))

    rasas = methods()
    speedups.install()
    patched_once = methods()
    speedups.install()
    assert methods() == patched_once
    assert all(ours != theirs for ours, theirs in zip(patched_once, rasas))
    speedups.uninstall()
    assert methods() == rasas
    if was_installed:
        speedups.install()


def test_the_clinic_nlg_installs_the_speedups() -> None:
    from addons.clinic_nlg import ClinicNLG

    ClinicNLG()
    assert speedups.installed()


# ---------------------------------------------------------------------------- graph runner


@pytest.fixture(scope="module")
def agent() -> Any:
    """The trained clinic model (``make pytest`` sets CLINIC_MODEL), with an in-memory store."""
    import os

    from rasa.core.agent import load_agent

    path = os.environ.get("CLINIC_MODEL")
    if not path:
        pytest.fail("CLINIC_MODEL is not set to a trained model; run the suite with `make pytest`")
    import asyncio

    return asyncio.run(load_agent(model_path=path))


MESSAGES = ["hi there", "how much does a single infusion cost", "I take lithium, is ketamine safe for me?",
            "i want to die", "book a consultation", "", "Maria Lopez", "¿cuánto cuesta?", "x" * 3000]


def test_the_graph_runner_gives_rasas_parses_and_predictions(patched: None, agent: Any) -> None:
    """All speed-ups at once (graph runner, states memo, rule checks, slot copies) against none."""
    import asyncio

    from rasa.shared.core.events import ActionExecuted, UserUttered

    async def run() -> list[Any]:
        results = []
        for text in MESSAGES:
            parse = await agent.parse_message(text)
            tracker = agent.tracker_store.init_tracker(f"graph-{len(results)}")
            tracker.update(ActionExecuted("action_listen"))
            tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), agent.domain)
            prediction = agent.processor._predict_next_with_tracker(tracker)
            results.append((parse, prediction.probabilities, prediction.policy_name, prediction.events))
        return results

    ours = asyncio.run(run())
    theirs = original(lambda: asyncio.run(run()))
    assert ours == theirs
    assert {p["intent"]["name"] for p, *_ in ours} >= {"greet", "crisis"}


def test_the_graph_runner_runs_each_node_once_and_only_what_the_targets_need(patched: None) -> None:
    from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    calls: list[str] = []

    class Step(GraphComponent):
        def __init__(self, name: str) -> None:
            self.name = name

        @classmethod
        def create(cls, config: dict, model_storage: Any, resource: Any, execution_context: Any) -> "Step":
            return cls(resource.name)

        def run(self, **inputs: Any) -> str:
            calls.append(self.name)
            return self.name + "(" + ",".join(f"{k}={inputs[k]}" for k in sorted(inputs)) + ")"

    def node(needs: dict[str, str]) -> SchemaNode:
        return SchemaNode(needs=needs, uses=Step, constructor_name="create", fn="run", config={})

    schema = GraphSchema({
        "a": node({"x": "__input__"}),
        "b": node({"x": "a"}),
        "c": node({"x": "a", "y": "b"}),
        "unused": node({"x": "__input__"}),
    })
    import tempfile
    from pathlib import Path

    from rasa.engine.runner.dask import DaskGraphRunner

    with tempfile.TemporaryDirectory() as folder:
        runner = DaskGraphRunner(schema, LocalModelStorage(Path(folder)), ExecutionContext(schema))
        ours = runner.run(inputs={"__input__": 1}, targets=["c"])
        assert calls == ["a", "b", "c"]
        calls.clear()
        theirs = original(lambda: runner.run(inputs={"__input__": 1}, targets=["c"]))
    assert ours == theirs == {"c": "c(x=a(x=1),y=b(x=a(x=1)))"}
    assert sorted(calls) == ["a", "b", "c"]
    from rasa.engine.exceptions import GraphRunError

    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__input__": "a"}, targets=["c"])


# ---------------------------------------------------------------------------- kept HTTP sessions


def test_endpoint_requests_reuse_one_connection_with_rasas_results_and_errors(patched: None) -> None:
    import asyncio

    from aiohttp import web
    from rasa.utils.endpoints import ClientResponseError

    peers: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        body = await request.json()
        if body.get("fail"):
            return web.json_response({"error": "no"}, status=400)
        return web.json_response({"echo": body, "auth": request.headers.get("Authorization"),
                                  "token": request.query.get("token")})

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/webhook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook", token="t0k",
                                  basic_auth={"username": "u", "password": "p"})
        try:
            first = await endpoint.request(json={"n": 1}, method="post")
            second = await endpoint.request(json={"n": 2, "text": "¿cuánto cuesta? 😀 </script>"}, method="post")
            assert first["echo"] == {"n": 1} and second["echo"] == {"n": 2, "text": "¿cuánto cuesta? 😀 </script>"}
            assert first["auth"].startswith("Basic ") and first["token"] == "t0k"
            assert peers[0] == peers[1]  # the same keep-alive connection
            with pytest.raises(ClientResponseError) as error:
                await endpoint.request(json={"fail": True}, method="post")
            assert error.value.status == 400
            assert (await endpoint.request(json={"n": 3}, method="post"))["echo"] == {"n": 3}
            await asyncio.sleep(speedups.KEEPALIVE_S + 0.5)  # idle: the connection is dropped
            await endpoint.request(json={"n": 4}, method="post")
            assert peers[-1] != peers[0]
        finally:
            for session in endpoint.__dict__.get("_clinic_sessions", {}).values():
                await session.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_new_event_loop_gets_its_own_session(patched: None) -> None:
    import asyncio

    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")

    async def session_of_this_loop() -> Any:
        async with endpoint.session() as session:
            again = endpoint.session()
            async with again as same:
                assert same is session
            return session

    first = asyncio.run(session_of_this_loop())
    second = asyncio.run(session_of_this_loop())
    assert first is not second


# ---------------------------------------------------------------------------- dialogue states


def story_trackers() -> list[Any]:
    """Every prefix (at each action) of this project's test conversations, as trackers."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

    from clinic.settings import PROJECT_DIR

    domain = Domain.load(str(PROJECT_DIR / "domain.yml"))
    steps = YAMLStoryReader(domain).read_from_file(str(PROJECT_DIR / "tests" / "test_stories.yml"))
    trackers = []
    for step in steps:
        events = [ActionExecuted("action_listen"), *step.events]
        cuts = [i for i, e in enumerate(events) if isinstance(e, ActionExecuted)] + [len(events)]
        for cut in cuts[1:]:
            trackers.append(DialogueStateTracker.from_events(step.block_name, events[:cut], domain.slots))
    return [domain, trackers]


ARGUMENTS = [{}, {"omit_unset_slots": True}, {"ignore_rule_only_turns": True},
             {"ignore_rule_only_turns": True, "rule_only_data": {"slots": ["handoff"], "active_loops": []}}]


def test_dialogue_states_are_rasas_and_callers_cannot_spoil_them(patched: None) -> None:
    domain, trackers = story_trackers()
    assert len(trackers) > 50
    for tracker in trackers:
        for arguments in ARGUMENTS:
            ours = tracker.past_states(domain, **arguments)
            theirs = original(lambda: tracker.past_states(domain, **arguments))
            assert ours == theirs
            if ours and ours[-1].get("user"):
                ours[-1]["user"].clear()  # as the rule policy edits the last state
            assert tracker.past_states(domain, **arguments) == theirs  # from the memo, unspoilt


def test_remembered_states_follow_the_conversation(patched: None) -> None:
    from rasa.shared.core.events import ActionExecuted, SlotSet

    domain, trackers = story_trackers()
    tracker = trackers[5]
    before = tracker.past_states(domain)
    tracker.update(SlotSet("handoff", True), domain)
    tracker.update(ActionExecuted("action_listen"), domain)
    after = tracker.past_states(domain)
    assert after != before
    assert after == original(lambda: tracker.past_states(domain))


def test_slots_are_copied_as_copy_copy_copies_them(patched: None) -> None:
    import copy

    from rasa.shared.core.slots import Slot, TextSlot

    domain, _ = story_trackers()
    for slot in domain.slots:
        slot.value = {"list": [1]} if slot.type_name == "any" else slot.value
        ours = copy.copy(slot)
        theirs = original(lambda: copy.copy(slot))
        assert type(ours) is type(theirs) is type(slot) and ours is not slot
        assert ours.__dict__ == theirs.__dict__ == slot.__dict__

    class Custom(TextSlot):
        def __reduce_ex__(self, protocol: Any) -> Any:
            return (Custom, ("rebuilt", []), {"value": "from reduce"})

    custom = Custom("original", [])
    ours, theirs = copy.copy(custom), original(lambda: copy.copy(custom))
    assert ours.name == theirs.name == "rebuilt"  # its own pickle method was used
    assert ours.__dict__ == theirs.__dict__
    assert isinstance(custom, Slot)


def test_predictions_over_whole_test_conversations_are_rasas(patched: None, agent: Any) -> None:
    """Every prefix of the test conversations (forms, slots, crisis inside a form...): the same
    next action, probabilities and policy with all speed-ups as without."""
    _, trackers = story_trackers()

    def predict() -> list[Any]:
        results = []
        for tracker in trackers:
            prediction = agent.processor._predict_next_with_tracker(tracker.copy())
            results.append((prediction.max_confidence_index, prediction.policy_name, prediction.probabilities))
        return results

    ours = predict()
    assert ours == original(predict)
    assert len({policy for _, policy, _ in ours}) >= 2  # rules and memoization both decided some


def test_a_domain_is_empty_exactly_when_rasa_says_so(patched: None) -> None:
    from rasa.shared.core.domain import Domain

    from clinic.settings import PROJECT_DIR

    for domain in (Domain.empty(), Domain.load(str(PROJECT_DIR / "domain.yml")), Domain.from_dict({"intents": ["greet"]})):
        assert domain.is_empty() == original(domain.is_empty) == domain.is_empty()
    assert Domain.empty().is_empty() and not Domain.from_dict({"intents": ["greet"]}).is_empty()


# ---------------------------------------------------------------------------- tracker copies


def tracker_state(tracker: Any) -> dict[str, Any]:
    """Everything a tracker holds, for comparing a copy with Rasa's replayed copy."""
    import dataclasses

    from rasa.shared.core.trackers import EventVerbosity

    return {
        "type": type(tracker),
        "events": list(tracker.events),
        "same event objects": [id(e) for e in tracker.events],
        "slots": {name: (type(slot), vars(slot)) for name, slot in tracker.slots.items()},
        "active_loop": dataclasses.asdict(tracker.active_loop) if tracker.active_loop else None,
        "latest_message": latest(tracker.latest_message, tracker.events),
        "latest_bot_utterance": latest(tracker.latest_bot_utterance, tracker.events),
        "plain": {key: value for key, value in vars(tracker).items()
                  if key not in {"events", "slots", "active_loop", "latest_message", "latest_bot_utterance"}
                  and not key.startswith("_clinic_")},
        "dump": tracker.current_state(EventVerbosity.ALL),
    }


def latest(message: Any, events: Any) -> tuple[dict[str, Any], bool]:
    """A latest message's content, and whether it is one of the events (else a placeholder,
    whose timestamp is when it was made)."""
    one_of_them = any(e is message for e in events)
    content = dict(vars(message))
    if not one_of_them:
        assert abs(content.pop("timestamp") - time.time()) < 60
    return content, one_of_them


def served_trackers() -> list[Any]:
    """Trackers as the server holds them: read back from stored events, with a model id, in the
    middle of a form, after a session start (placeholders for the latest messages), edited."""
    from rasa.shared.core.events import (ActionExecuted, BotUttered, DefinePrevUserUtteredFeaturization,
                                         SessionStarted, SlotSet, UserUttered)
    from rasa.shared.core.trackers import DialogueStateTracker

    domain, trackers = story_trackers()
    served = [DialogueStateTracker.from_dict(t.sender_id, [e.as_dict() for e in t.events], domain.slots)
              for t in trackers]
    for tracker in served[::7]:
        tracker.model_id, tracker.assistant_id, tracker.sender_source = "model-1", "clinic", "rest"
    fresh = DialogueStateTracker.from_events("fresh", [ActionExecuted("action_session_start"), SessionStarted(),
                                                       ActionExecuted("action_listen")], domain.slots)
    fresh.update(DefinePrevUserUtteredFeaturization(True))  # edits the placeholder latest message
    both = DialogueStateTracker.from_events("both", [UserUttered("hi", {"name": "greet"}), BotUttered("hello"),
                                                     SlotSet("patient_name", "Sam")], domain.slots)
    return [*served, fresh, both, DialogueStateTracker("", domain.slots)]


def test_tracker_copies_hold_what_rasas_replayed_copies_hold(patched: None) -> None:
    domain, _ = story_trackers()
    trackers = served_trackers()
    assert any(t.active_loop for t in trackers) and any(t.model_id for t in trackers)
    trackers[-4].past_states(domain)  # with the states memo on it
    for tracker in trackers:
        ours = tracker.copy()
        theirs = original(lambda: tracker.copy())
        assert ours is not tracker
        assert tracker_state(ours) == tracker_state(theirs)


def test_a_tracker_copy_can_be_changed_without_touching_the_original(patched: None) -> None:
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet

    for tracker in served_trackers()[::5]:
        before = tracker_state(tracker)
        copied = tracker.copy()
        copied.update(ActiveLoop("booking_form"))
        copied.update(SlotSet("patient_name", "Alex"))
        copied.reject_action("booking_form")
        copied.update(ActionExecuted("action_listen"))
        copied.slots["offered_slots"].value = ["a slot"]
        assert tracker_state(tracker) == before


def test_unusual_trackers_are_copied_by_replaying_their_events(patched: None) -> None:
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    class Custom(DialogueStateTracker):
        pass

    domain, _ = story_trackers()
    events = [SlotSet("patient_name", "Sam")]
    capped = DialogueStateTracker.from_events("c", events, domain.slots, max_event_history=5)
    custom = Custom.from_events("c", events, domain.slots)
    tagged = DialogueStateTracker.from_events("c", events, domain.slots)
    tagged.note = "kept by someone else"
    for tracker in (capped, custom, tagged):
        assert tracker_state(tracker.copy()) == tracker_state(original(lambda: tracker.copy()))
    assert type(custom.copy()) is DialogueStateTracker  # as Rasa's init_copy makes it
    assert not hasattr(tagged.copy(), "note")


# ---------------------------------------------------------------------------- debug-log copies


def test_rasas_debug_log_arguments_are_copied_only_when_debug_is_logged(patched: None) -> None:
    import logging

    import structlog
    from rasa.core import processor
    from rasa.core.policies import memoization, rule_policy
    from rasa.utils.log_utils import configure_structlog

    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    before = structlog.get_config()
    try:
        for module in (processor, rule_policy, memoization):
            configure_structlog(logging.INFO)
            assert module.copy.deepcopy(states) is states  # the debug call drops it unread
            assert module.copy.copy(states) == states and module.copy.copy(states) is not states
            configure_structlog(logging.DEBUG)
            logged = module.copy.deepcopy(states)
            assert logged == states and logged[0]["user"] is not states[0]["user"]  # a snapshot, as Rasa's
    finally:
        structlog.configure(**before)


def test_those_modules_deep_copy_nothing_but_debug_log_arguments() -> None:
    """If a Rasa upgrade deep-copies something for real in these modules, this fails."""
    import ast
    import importlib
    import inspect

    for name in speedups._DEBUG_COPYING_MODULES:
        tree = ast.parse(inspect.getsource(importlib.import_module(name)))
        in_debug_calls = set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "debug"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "structlogger"):
                in_debug_calls.update(id(inner) for inner in ast.walk(node))
        deep_copies = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "deepcopy"]
        assert deep_copies, name
        assert all(id(node) in in_debug_calls for node in deep_copies), name
        uses_of_copy = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                        and isinstance(node.value, ast.Name) and node.value.id == "copy"}
        assert uses_of_copy <= {"deepcopy", "copy"}, name


# ---------------------------------------------------------------------------- rules, JSON


def rule_policy(agent: Any) -> Any:
    from rasa.core.policies.rule_policy import RulePolicy

    found = [node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
             if isinstance(getattr(node, "_component", None), RulePolicy)]
    assert len(found) == 1
    return found[0]


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
                assert ours == original(lambda: policy._get_possible_keys(lookup, states))
                cases += 1
                found += bool(ours)
    assert cases > 200 and found > 50  # rules found in many turns, none in others
    for states in ([], [{}], [{"prev_action": {"action_text": "hi"}}], [{"user": {"intent": "greet"}}]):
        for lookup in (policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH], {}):
            assert policy._get_possible_keys(lookup, states) == original(lambda: policy._get_possible_keys(lookup, states))


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


def action_payloads() -> list[Any]:
    from rasa.shared.core.domain import Domain

    from clinic.settings import PROJECT_DIR

    domain = Domain.load(str(PROJECT_DIR / "domain.yml"))
    validator = RemoteAction("validate_booking_form", EndpointConfig("http://127.0.0.1:1/webhook"))
    return [validator._action_call_format(tracker, domain) for tracker in served_trackers()]


@pytest.mark.parametrize("value", [
    {"text": "¿cuánto cuesta? 😀 </script> \u0000 \n \"quoted\"", "slash": "a/b"},
    {"floats": [0.1, 1e-7, 1796345765.3323784, -0.0, 1e300, 0.30000000000000004], "ints": [0, -1, 2**63 - 1]},
    {"nested": {"a": [None, True, False, {"b": []}]}, "": ""},
    {"big": 2**70}, {"nan": float("nan")}, {"inf": float("inf")},
])
def test_action_requests_are_encoded_as_the_same_json(value: Any) -> None:
    import json

    text = speedups.encode_json(value)
    theirs = json.dumps(value)
    assert json.loads(text) == json.loads(theirs) or text == theirs  # NaN is not equal to itself


def test_whole_action_requests_are_encoded_as_the_same_json() -> None:
    import json

    payloads = action_payloads()
    assert any("domain" in p for p in payloads) and any(len(p["tracker"]["events"]) > 30 for p in payloads)
    for payload in payloads:
        assert json.loads(speedups.encode_json(payload)) == json.loads(json.dumps(payload))


def test_dialogue_states_of_served_conversations_with_hidden_rule_turns_are_rasas(patched: None, agent: Any) -> None:
    """Conversations played through the model, where rule-only turns are hidden from the
    memoization policy's states: every prefix gives Rasa's states for every set of arguments."""
    import asyncio

    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    async def play(sender: str, texts: list[str]) -> Any:
        for text in texts:
            await agent.handle_text(text, sender_id=sender)
        return await agent.tracker_store.retrieve(sender)

    conversations = [["hi", "how much does a single infusion cost", "thanks", "what are the side effects"],
                     ["hello", "I take lithium, is ketamine safe for me?", "ok"],
                     ["hey", "what is ketamine", "i want to die"]]
    trackers = [asyncio.run(play(f"states-{n}", texts)) for n, texts in enumerate(conversations)]
    events = [e for t in trackers for e in t.events]
    assert any(isinstance(e, ActionExecuted) and e.hide_rule_turn for e in events)
    rule_only = rule_policy(agent)._get_rule_only_data()
    arguments = [*ARGUMENTS, {"ignore_rule_only_turns": True, "rule_only_data": rule_only}]
    for tracker in trackers:
        for cut in [i for i, e in enumerate(tracker.events) if isinstance(e, ActionExecuted)] + [len(tracker.events)]:
            prefix = DialogueStateTracker.from_events(tracker.sender_id, list(tracker.events)[:cut],
                                                      agent.domain.slots)
            for args in arguments:
                assert prefix.past_states(agent.domain, **args) == original(
                    lambda: prefix.past_states(agent.domain, **args))

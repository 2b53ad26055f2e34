"""addons.speedups: the patched Rasa methods give exactly Rasa's results (and install once)."""

from __future__ import annotations

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

    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.slots import Slot

    def methods() -> tuple[Any, ...]:
        return (RemoteAction._validate_action_result, Event.resolve_by_type, DaskGraphRunner.run,
                EndpointConfig.session, Domain.states_for_tracker_history, RulePolicy._is_rule_applicable,
                Domain.is_empty, getattr(Slot, "__copy__", None))

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
            second = await endpoint.request(json={"n": 2}, method="post")
            assert first["echo"] == {"n": 1} and second["echo"] == {"n": 2}
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

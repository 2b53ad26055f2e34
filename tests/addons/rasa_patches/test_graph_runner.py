"""addons.rasa_patches.graph_runner: the graph's nodes run once each, with Rasa's results."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.addons.rasa_patches.helpers import original


def test_the_graph_runner_runs_each_node_once_and_only_what_the_targets_need(patched: None) -> None:
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    calls: list[str] = []

    class Step(GraphComponent):
        def __init__(self, name: str) -> None:
            self.name = name

        @classmethod
        def create(cls, config: dict, model_storage: Any, resource: Any, execution_context: Any) -> Step:
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
    with tempfile.TemporaryDirectory() as folder:
        runner = DaskGraphRunner(schema, LocalModelStorage(Path(folder)), ExecutionContext(schema))
        ours = runner.run(inputs={"__input__": 1}, targets=["c"])
        assert calls == ["a", "b", "c"]
        calls.clear()
        theirs = original(lambda: runner.run(inputs={"__input__": 1}, targets=["c"]))
    assert ours == theirs == {"c": "c(x=a(x=1),y=b(x=a(x=1)))"}
    assert sorted(calls) == ["a", "b", "c"]

    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__input__": "a"}, targets=["c"])

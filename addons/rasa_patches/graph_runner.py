"""Replaces ``DaskGraphRunner.run``: the graph's nodes called directly, each once.

Why: Rasa runs the graph for the NLU parse and for every action prediction (three or more graph
runs per message), and each run rebuilds the minimal graph schema and a dask task graph and hands
it to dask's scheduler: ~11% of the server's busy time under load, more than the NLU featurizers.
Here the minimal schema is computed once per set of targets (kept on the runner) and the nodes
are called directly, each once, dependencies first, with the same inputs (``(node name, output)``
tuples) and the same result (``{target: output}``); a component's error propagates as before.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

from addons.rasa_patches.patch import Patch, Replacement


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


PATCH = Patch("graph runner", [Replacement(DaskGraphRunner, "run", _run_graph)])

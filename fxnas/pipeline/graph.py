"""The step graph of a pipeline (networkx): an edge for every input reference and every ``after``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from ..errors import ConfigError
from .config import PARAMS, split_ref


def step_graph(steps: Mapping[str, Mapping[str, Any]]) -> nx.DiGraph:
    """A DiGraph with an edge dependency -> dependant; ConfigError naming a cycle."""
    g = nx.DiGraph()
    g.add_nodes_from(steps)
    for name, s in steps.items():
        for ref in s["inputs"].values():
            dep, _ = split_ref(ref, "")
            if dep != PARAMS:
                g.add_edge(dep, name)
        for dep in s["after"]:
            g.add_edge(dep, name)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return g
    path = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
    raise ConfigError(f"the steps depend on each other in a cycle: {path}; a step can only take outputs of "
                      f"steps before it")


def run_order(g: nx.DiGraph) -> list[str]:
    """The steps in a topological order (ties in the order the pipeline lists them)."""
    position = {n: i for i, n in enumerate(g.nodes)}
    return list(nx.lexicographical_topological_sort(g, key=lambda n: position[n]))

"""GraphCost: the params and MACs of the subnet an arch selects, read off a supernet's cost tree."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch.fx as fx

from ..space import SearchSpace, TensorParam
from ..supernet import space_of
from .tree import build_cost_tree


class GraphCost:
    """Static costs per sample of the subnet of an arch, without training or materialising it.

    Built once from the supernet's cost tree (``fxnas.profilers.tree``: the fixed part counted from the graph
    at batch 1, each option of each choice module counted at its inputs, nested options recursively), then
    each call sums the chosen options. Returns ``params``, ``macs``, ``flops``, ``read_bytes``,
    ``write_bytes``. ``flops`` is the multiply-accumulate count, as NAS papers and NAS-Bench-201 report
    "FLOPs"; the static profile's own ``flops`` (2 per MAC plus the other ops) is ``profile_flops``.

    ``table`` lists the top-level choice modules: ``(param name, {option: (params, macs)})``, an option with
    inner choices counted at their current values (``nested`` says whether there are any);
    ``fixed_params``/``fixed_flops`` are what lies outside every choice module.
    """

    def __init__(self, supernet: fx.GraphModule, example_inputs: Any = None) -> None:
        self.space = space_of(supernet)
        self.tree = build_cost_tree(supernet, example_inputs)
        self.nested = self.tree.nested
        current = self.space.current()
        self.table: list[tuple[str, dict[str, tuple[int, int]]]] = []
        for t in self.tree.terms:
            costs = {}
            for name, opt in t.options.items():
                m = opt.evaluate(current)
                costs[name] = (int(m.get("params", 0)), int(m.get("macs", 0)))
            self.table.append((t.param, costs))
        self.fixed_params = int(self.tree.fixed.get("params", 0))
        self.fixed_flops = int(self.tree.fixed.get("macs", 0))

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """Costs of the subnet ``arch`` selects (params it leaves out keep their current value)."""
        full = {**self.space.current(), **self.space.validate(arch)}
        m = self.tree.evaluate(full)
        return {"params": float(m["params"]), "flops": float(m["macs"]), "macs": float(m["macs"]),
                "profile_flops": float(m["flops"]), "read_bytes": float(m["read_bytes"]),
                "write_bytes": float(m["write_bytes"])}

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (dask workers): the space without its handlers, which hold the supernet's modules."""
        state = dict(self.__dict__)
        bare = SearchSpace()
        for name, p in self.space.items():
            if not isinstance(p, TensorParam):
                bare.params[name] = copy.copy(p)
        state["space"] = bare
        return state

"""Cost trees: a supernet's cost as fixed parts plus, per choice module, the cost of each option.

``build_cost_tree(supernet)`` counts the supernet's graph without its choice modules (the fixed part), then
each option of each choice module at the inputs that module receives, recursively (an option holding inner
choice modules, such as ``BRANCH(...)``, is a tree itself). The tree then gives, without running anything:

* ``tree.evaluate(arch)``: the exact cost of the subnet ``arch`` selects (additive metrics: params, MACs...);
* ``tree.expected(arch_weights(space), metric)``: the expectation under the arch distribution (softmax of
  each param's alphas), a tensor differentiable in the alphas (ProxylessNAS's expected-latency form).

What a level costs is a ``LevelCost``: ``StaticCost`` takes the static counter's totals; the latency profiler
(``fxnas.profilers.latency.LatencyCost``) prices fixed ops from a per-op table and options by measuring them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..errors import ConfigError
from ..graph import node_shape
from ..mixed.base import MixedOp, fixed_arch
from ..space import SearchSpace
from ..supernet import space_of
from .counter import ADDITIVE, GraphCount, count, count_graph
from .keys import structure_key


def is_choice(module: nn.Module) -> bool:
    """Whether ``module`` stands for a choice of the space (its options are costed one by one)."""
    return isinstance(module, MixedOp)


def choice_options(op: MixedOp, space: SearchSpace) -> dict[Any, nn.Module]:
    """The plain module of each value of ``op``'s param (``op.materialize()`` under each; the value is restored)."""
    param = op.param
    before = param.value
    out: dict[Any, nn.Module] = {}
    try:
        for value in param.choices:
            space.apply({param.name: value})
            out[value] = op.materialize()
    finally:
        space.apply({param.name: before})
    return out


@dataclass
class ChoiceTerm:
    """One choice module: its param, where it sits, and the cost tree of each option (in the param's order)."""

    param: str
    site: str
    options: dict[Any, CostTree]

    def values(self, metric: str) -> torch.Tensor | None:
        """Each option's ``metric`` as a vector, when no option holds inner choices (else None)."""
        if any(o.terms for o in self.options.values()):
            return None
        return torch.tensor([float(o.fixed.get(metric, 0.0)) for o in self.options.values()], dtype=torch.float64)


@dataclass
class CostTree:
    """Fixed costs of one graph level plus one term per choice module in it."""

    fixed: dict[str, float]
    terms: list[ChoiceTerm] = field(default_factory=list)

    def evaluate(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """The metrics of the subnet ``arch`` selects (``arch`` must name every param the tree uses)."""
        out = dict(self.fixed)
        for t in self.terms:
            if arch.get(t.param) not in t.options:
                raise ConfigError(f"arch value {arch.get(t.param)!r} of {t.param!r} is not one of "
                                  f"{list(t.options)}")
            for k, v in t.options[arch[t.param]].evaluate(arch).items():
                out[k] = out.get(k, 0.0) + v
        return out

    def expected(self, weights: Mapping[str, torch.Tensor], metric: str) -> torch.Tensor:
        """E[metric] when each param's value is drawn from ``weights[param]`` (probabilities over its choices)."""
        device = next((w.device for w in weights.values()), torch.device("cpu"))
        total = torch.tensor(float(self.fixed.get(metric, 0.0)), dtype=torch.float64, device=device)
        for t in self.terms:
            w = weights[t.param].to(torch.float64)
            vals = t.values(metric)
            if vals is None:
                vals = torch.stack([o.expected(weights, metric) for o in t.options.values()])
            total = total + w @ vals.to(device)
        return total

    def span(self, metric: str) -> float:
        """The largest the choices can add to ``metric``: per term, its most costly option (recursively)."""
        return sum(max(o.fixed.get(metric, 0.0) + o.span(metric) for o in t.options.values()) for t in self.terms)

    def params(self) -> list[str]:
        """Every param the tree chooses on, outer first, each once."""
        seen: dict[str, None] = {}
        for t in self.terms:
            seen[t.param] = None
            for o in t.options.values():
                seen.update(dict.fromkeys(o.params()))
        return list(seen)

    @property
    def nested(self) -> bool:
        """Whether some option holds inner choices."""
        return any(o.terms for t in self.terms for o in t.options.values())


class LevelCost:
    """How one graph level of a cost tree is priced; the base class takes the static counter's totals."""

    metrics: tuple[str, ...] = ADDITIVE

    def level(self, counted: GraphCount) -> dict[str, float]:
        """The cost of a counted graph level, its choice modules left out."""
        return {k: float(v) for k, v in counted.total().items()}

    def leaf(self, module: nn.Module, args: tuple[Any, ...]) -> dict[str, float] | None:
        """The cost of an option without inner choices as a whole, or None to count its graph as a level."""
        return None


StaticCost = LevelCost  # the static counter's totals: params, MACs, FLOPs, memory read/written


def arch_weights(space: SearchSpace) -> dict[str, torch.Tensor]:
    """Per discrete param, the distribution a gradient method holds: softmax of the alphas that score it,
    or one-hot at the current value for a param without alphas (no gradient)."""
    scored = {t.categorical: t for t in space.tensors().values() if t.categorical}
    out: dict[str, torch.Tensor] = {}
    for name, p in space.discrete().items():
        choices = getattr(p, "choices", None)
        if choices is None:
            continue
        if name in scored:
            out[name] = torch.softmax(scored[name].value, -1)
        else:
            out[name] = torch.nn.functional.one_hot(torch.tensor(choices.index(p.value)), len(choices)).double()
    return out


def batch_one_inputs(gm: fx.GraphModule) -> tuple[torch.Tensor, ...]:
    """Zeros of the placeholders' traced shapes at batch 1 (what per-sample costs are counted on)."""
    shapes = [node_shape(n) for n in gm.graph.nodes if n.op == "placeholder"]
    if not shapes or any(s is None for s in shapes):
        raise ConfigError("costing a supernet needs the input shapes recorded at trace time; pass example_inputs")
    dev = next(gm.parameters(), torch.empty(0)).device
    return tuple(torch.zeros((1, *s[1:]), device=dev) for s in shapes)  # type: ignore[index]


def build_cost_tree(supernet: fx.GraphModule, example_inputs: Any = None, cost: LevelCost | None = None
                    ) -> CostTree:
    """The cost tree of ``supernet`` on ``example_inputs`` (default: batch-1 zeros of its traced input shapes)."""
    space = space_of(supernet)
    cost = cost if cost is not None else LevelCost()
    modes = [(m, m.training) for m in supernet.modules()]
    try:
        return _tree(choice_sites(supernet, example_inputs), cost, space, 0, {})
    finally:
        for m, was in modes:
            m.training = was


def choice_sites(supernet: fx.GraphModule, example_inputs: Any = None) -> GraphCount:
    """The supernet's graph counted without its choice modules, whose inputs come back as ``sites``; in eval
    mode (left on), on ``example_inputs`` (default: batch-1 zeros of the traced input shapes)."""
    args = batch_one_inputs(supernet) if example_inputs is None else example_inputs
    supernet.eval()
    with fixed_arch(supernet):  # choice modules run their current option only, for the shapes downstream
        return count_graph(supernet, args, stop_at=is_choice)


_MAX_DEPTH = 8


def _tree(counted: GraphCount, cost: LevelCost, space: SearchSpace, depth: int, memo: dict[str, CostTree]
          ) -> CostTree:
    if depth > _MAX_DEPTH:
        raise ConfigError(f"choices nested deeper than {_MAX_DEPTH} levels; does an option contain itself?")
    terms = []
    for site in counted.sites:
        op: MixedOp = site.module  # type: ignore[assignment]
        options = {}
        for value, module in choice_options(op, space).items():
            options[value] = _option(module, site.args, cost, space, depth, memo)
        terms.append(ChoiceTerm(op.param.name, site.path, options))
    return CostTree(cost.level(counted), terms)


def _option(module: nn.Module, args: tuple[Any, ...], cost: LevelCost, space: SearchSpace, depth: int,
            memo: dict[str, CostTree]) -> CostTree:
    inner = any(is_choice(m) for m in module.modules())
    key = None if inner else structure_key(module, args)  # cells repeat: equal options are costed once
    if key is not None and key in memo:
        return memo[key]
    whole = None if inner else cost.leaf(module, args)
    if whole is not None:
        tree = CostTree(dict(whole))
    else:
        with fixed_arch(module):
            counted = count(module, args, stop_at=is_choice)
        tree = _tree(counted, cost, space, depth + 1, memo)
    if key is not None:
        memo[key] = tree
    return tree

"""The ProxylessNAS-style differentiable hardware cost term of the gradient optimizers (``optim.cost``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..profilers.tree import CostTree, arch_weights, build_cost_tree
from ..space import SearchSpace

METRICS = ("flops", "params")
COST_KEYS = {"metric": "flops | params (default flops)", "weight": "a number >= 0 (default 0.1)"}


class ExpectedCost:
    """A differentiable hardware term: ``weight * E[cost] / cost range``, E over softmax(alpha) of each mixed op.

    ``metric`` is ``flops`` (multiply-accumulates) or ``params``, taken from the supernet's cost tree
    (``fxnas.profilers.tree``: the static counter per option, nested options recursively); the term lies in
    [0, weight], so ``weight`` reads as "accuracy loss worth the whole cost range". This is ProxylessNAS's
    expected-latency loss with the graph's counts as the proxy.
    """

    def __init__(self, metric: str = "flops", weight: float = 0.1) -> None:
        ok_weight = isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
        if metric not in METRICS or not ok_weight or not weight >= 0:
            raise ConfigError(f"cost needs metric flops or params and weight >= 0; got metric={metric!r}, "
                              f"weight={weight!r}")
        self.metric, self.weight = metric, float(weight)
        self.tree: CostTree | None = None
        self.fixed = self.span = 0.0

    @classmethod
    def from_config(cls, cost: Any) -> ExpectedCost | None:
        """The term an ``optim.cost`` option asks for (None for none); a ConfigError naming the valid keys
        when it is not a mapping of them."""
        if cost is None:
            return None
        valid = ", ".join(f"{k}: {v}" for k, v in COST_KEYS.items())
        if not isinstance(cost, Mapping):
            raise ConfigError(f"optim.cost must be a mapping ({valid}); got {cost!r}")
        unknown = sorted(str(k) for k in cost if k not in COST_KEYS)
        if unknown:
            raise ConfigError(f"optim.cost got unknown keys {unknown}; valid keys: {valid}")
        return cls(**cost)

    @property
    def key(self) -> str:
        """The cost tree's metric: the counter's ``macs`` for ``flops`` (the NAS convention), else ``params``."""
        return "macs" if self.metric == "flops" else "params"

    def _build(self, model: nn.Module, space: SearchSpace) -> None:
        tree = build_cost_tree(model)  # type: ignore[arg-type]
        scored = {t.categorical for t in space.tensors().values() if t.categorical}
        for pname in tree.params():
            if pname not in scored:
                raise ConfigError(f"cost: param {pname!r} has no alphas; use a gradient mixed op")
        self.tree = tree
        self.fixed = float(tree.fixed.get(self.key, 0.0))
        self.span = max(tree.span(self.key), 1.0)

    def __call__(self, model: nn.Module, space: SearchSpace) -> tuple[torch.Tensor, float]:
        """(the term to add to the arch loss, the expected cost of the whole network)."""
        if self.tree is None:
            self._build(model, space)
        assert self.tree is not None
        expected = self.tree.expected(arch_weights(space), self.key)
        return (self.weight * (expected - self.fixed) / self.span).float(), float(expected.detach())


__all__ = ["ExpectedCost"]

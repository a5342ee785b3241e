"""The ProxylessNAS-style differentiable hardware cost term of the gradient optimizers (``optim.cost``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..space import SearchSpace, TensorParam

METRICS = ("flops", "params")
COST_KEYS = {"metric": "flops | params (default flops)", "weight": "a number >= 0 (default 0.1)"}


class ExpectedCost:
    """A differentiable hardware term: ``weight * E[cost] / max cost``, E over softmax(alpha) of each mixed op.

    ``metric`` is ``flops`` (multiply-accumulates) or ``params``, counted per candidate from the supernet's graph
    (objectives.GraphCost); the term lies in [0, weight], so ``weight`` reads as "accuracy loss worth the
    whole cost range". This is ProxylessNAS's expected-latency loss with the graph's counts as the proxy.
    """

    def __init__(self, metric: str = "flops", weight: float = 0.1) -> None:
        ok_weight = isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
        if metric not in METRICS or not ok_weight or not weight >= 0:
            raise ConfigError(f"cost needs metric flops or params and weight >= 0; got metric={metric!r}, "
                              f"weight={weight!r}")
        self.metric, self.weight = metric, float(weight)
        self.table: list[tuple[TensorParam, torch.Tensor]] | None = None
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

    def _build(self, model: nn.Module, space: SearchSpace) -> None:
        from ..objectives import GraphCost

        gc = GraphCost(model)
        k = 0 if self.metric == "params" else 1
        by_cat = {t.categorical: t for t in space.tensors().values() if t.categorical}
        self.table, top = [], 0.0
        for pname, costs in gc.table:
            if pname not in by_cat:
                raise ConfigError(f"cost: param {pname!r} has no alphas; use a gradient mixed op")
            choices = space[pname].choices  # type: ignore[attr-defined]
            c = torch.tensor([float(costs[n][k]) for n in choices])
            self.table.append((by_cat[pname], c))
            top += float(c.max())
        self.fixed = float(gc.fixed_params if k == 0 else gc.fixed_flops)
        self.span = max(top, 1.0)

    def __call__(self, model: nn.Module, space: SearchSpace) -> tuple[torch.Tensor, float]:
        """(the term to add to the arch loss, the expected cost of the whole network)."""
        if self.table is None:
            self._build(model, space)
        assert self.table is not None
        expected = sum(torch.softmax(t.value, -1) @ c.to(t.value.device) for t, c in self.table)
        return self.weight * expected / self.span, self.fixed + float(expected.detach())


__all__ = ["ExpectedCost"]

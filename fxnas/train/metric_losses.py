"""Metric-weighted losses (ModularNAS's AddMetricsLoss / MultMetricsLoss / MultLogMetricsLoss).

Each weighs the loss of the criteria before it by a differentiable hardware metric of the architecture: the
expected FLOPs (multiply-accumulates) or params of the supernet under softmax(alpha) of every mixed op
(``fxnas.optim.cost.ExpectedCost``, counted from the graph). With ``m`` that expectation and ``t`` the target:

* ``AddMetrics``:      ``loss + weight * (m / t - 1)``
* ``MultMetrics``:     ``alpha * loss * (m / t) ** beta``
* ``MultLogMetrics``:  ``alpha * loss * (log m / log t) ** beta``

The arch steps of gradient optimizers take their loss from the trainer's criteria, so the alphas learn the
trade-off (weight steps see the same loss; ``m`` has no weight gradient). ``target`` defaults to the expected
metric with uniform alphas (every candidate equally likely), a fixed value, where ModularNAS follows a moving
average of the metric. A model without architecture weights (a subnet being retrained, a discrete
supernet) leaves the loss unchanged.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError
from ..space import SearchSpace
from .criteria import CRITERIA, Criterion

Metric = Literal["flops", "params"]


class MetricLoss(Criterion):
    """Base of the metric-weighted losses: the expected metric of a model's arch and its target."""

    def __init__(self, metric: Metric = "flops", target: float | None = None) -> None:
        if metric not in ("flops", "params"):
            raise ConfigError(f"{type(self).__name__} metric must be flops or params, got {metric!r}")
        if target is not None and not (math.isfinite(target) and target > 0):
            raise ConfigError(f"{type(self).__name__} target must be a positive number, got {target!r}")
        self.metric, self.target = metric, target
        self._cache: tuple[int, Any, float] | None = None  # (id of the space, its ExpectedCost, target)

    def expected(self, model: nn.Module | None) -> tuple[torch.Tensor, float] | None:
        """(expected metric of ``model``'s arch, differentiable in the alphas; the target), or None when the
        model has no architecture weights."""
        from ..optim.cost import ExpectedCost

        space = getattr(model, "space", None)
        if model is None or not isinstance(space, SearchSpace) or not space.tensors():
            return None
        if self._cache is None or self._cache[0] != id(space):
            cost = ExpectedCost(self.metric, 1.0)
            target = self.target if self.target is not None else _uniform_total(model, space, self.metric)
            self._cache = (id(space), cost, target)
        _, cost, target = self._cache
        term, _ = cost(model, space)
        return cost.fixed + term * cost.span, target  # weight 1: term * span is the expected variable part

    def weigh(self, loss: torch.Tensor, m: torch.Tensor, t: float) -> torch.Tensor:
        """The loss weighted by metric ``m`` against target ``t``."""
        raise NotImplementedError

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        if loss is None:
            raise ConfigError(f"{type(self).__name__} weighs the loss of the criteria before it; put a task loss "
                              f"(e.g. CrossEntropy) first in the chain")
        got = self.expected(model)
        if got is None:
            return loss
        m, t = got
        return self.weigh(loss, m.to(loss.device), t)

    def __deepcopy__(self, memo: dict) -> MetricLoss:
        # the cached cost belongs to one supernet; a copied trainer rebuilds it for the model it trains
        new = copy.copy(self)
        new._cache = None
        memo[id(self)] = new
        return new


def _uniform_total(model: nn.Module, space: SearchSpace, metric: str) -> float:
    """The expected metric of the whole network when every mixed op's candidates are equally likely."""
    from ..optim.cost import ExpectedCost

    uniform = copy.deepcopy(space)
    with torch.no_grad():
        for t in uniform.tensors().values():
            t.value.zero_()
    cost = ExpectedCost(metric, 1.0)
    with torch.no_grad():
        term, _ = cost(model, uniform)
    return float(cost.fixed + float(term) * cost.span)


@CRITERIA.register("AddMetrics")
class AddMetrics(MetricLoss):
    """Adds ``weight * (m / target - 1)``, m the expected FLOPs or params of the arch (ModularNAS AddMetricsLoss)."""

    def __init__(self, metric: Metric = "flops", target: float | None = None, weight: float = 0.01) -> None:
        super().__init__(metric, target)
        self.weight = float(weight)

    def weigh(self, loss: torch.Tensor, m: torch.Tensor, t: float) -> torch.Tensor:  # noqa: D102
        return loss + self.weight * (m / t - 1.0)


@CRITERIA.register("MultMetrics")
class MultMetrics(MetricLoss):
    """``alpha * loss * (m / target) ** beta``, m the expected FLOPs or params (ModularNAS MultMetricsLoss)."""

    def __init__(self, metric: Metric = "flops", target: float | None = None, alpha: float = 1.0,
                 beta: float = 0.6) -> None:
        super().__init__(metric, target)
        self.alpha, self.beta = float(alpha), float(beta)

    def weigh(self, loss: torch.Tensor, m: torch.Tensor, t: float) -> torch.Tensor:  # noqa: D102
        return self.alpha * loss * (m / t) ** self.beta


@CRITERIA.register("MultLogMetrics")
class MultLogMetrics(MetricLoss):
    """``alpha * loss * (log m / log target) ** beta`` (ModularNAS MultLogMetricsLoss); needs target > 1."""

    def __init__(self, metric: Metric = "flops", target: float | None = None, alpha: float = 1.0,
                 beta: float = 0.6) -> None:
        super().__init__(metric, target)
        if target is not None and target <= 1:
            raise ConfigError(f"MultLogMetrics target must be > 1 (its log divides), got {target}")
        self.alpha, self.beta = float(alpha), float(beta)

    def weigh(self, loss: torch.Tensor, m: torch.Tensor, t: float) -> torch.Tensor:  # noqa: D102
        if t <= 1:
            raise ConfigError(f"MultLogMetrics needs a target > 1 (its log divides); the {self.metric} target is {t}")
        return self.alpha * loss * (torch.log(m) / math.log(t)) ** self.beta

"""The ProxylessNAS-style differentiable hardware term of the gradient optimizers (``optim.cost``).

Two forms, both read off a cost tree of the supernet (``fxnas.profilers.tree``: every option of every choice
module costed at its inputs, nested options recursively) and differentiable in the alphas:

* additive (``ExpectedCost``): ``weight * (E[metric] - fixed) / range`` added to the arch loss;
* a hardware criterion (``CriterionCost``, ``criterion: add | mul | logmul`` from ``HW_CRITERIA``): the task
  loss combined with E[metric] against a ``target``, as in ProxylessNAS (``mul#log``, ``add#linear``).

``metric`` is a static count (``flops`` = MACs, ``params``, ``read_bytes``, ``write_bytes``) or
``latency_ms``, whose tree is the latency table (``fxnas.profilers.latency.latency_tree``: each candidate
measured at its slot's shape on ``latency.runtime``, cached per machine). In a config::

    optim: {type: BinaryGate, cost: {metric: latency_ms, criterion: logmul, target: 400, scale: 1000,
                                     latency: {runtime: onnxruntime, repeats: 20}}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..profilers.tree import CostTree, arch_weights, build_cost_tree
from ..space import SearchSpace

# the cost-tree key of each metric name (flops are multiply-accumulates, the NAS convention)
METRICS = {"flops": "macs", "macs": "macs", "params": "params", "read_bytes": "read_bytes",
           "write_bytes": "write_bytes", "latency_ms": "latency_ms"}
LATENCY_KEYS = ("runtime", "repeats", "warmup", "cache", "statistic", "threads", "provider", "device")
COST_KEYS = {
    "metric": f"{' | '.join(METRICS)} (default flops)",
    "weight": "the additive form's weight, a number >= 0 (default 0.1), or the add criterion's",
    "criterion": "add | mul | logmul: the task loss combined with the metric against target (ProxylessNAS)",
    "target": "the criterion's target value of the metric (times scale)",
    "alpha": "mul/logmul factor (default 1)", "beta": "mul/logmul exponent (default 0.6)",
    "scale": "factor on the metric (1000: latency in microseconds, so that logmul's target is > 1)",
    "latency": f"latency_ms's profiler options: {', '.join(LATENCY_KEYS)}",
}


def _number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not v >= 0:
        raise ConfigError(f"optim.cost.{name} must be a number >= 0, got {v!r}")
    return float(v)


class ArchCost:
    """Base of the hardware terms: the tree is built on first use (the supernet is known then)."""

    def __init__(self, metric: str = "flops", scale: float = 1.0, latency: Mapping[str, Any] | None = None
                 ) -> None:
        if not isinstance(metric, str) or metric not in METRICS:
            raise ConfigError(f"optim.cost.metric must be one of {list(METRICS)}, got {metric!r}")
        if latency is not None and metric != "latency_ms":
            raise ConfigError(f"optim.cost.latency configures the latency_ms metric, not {metric!r}")
        bad = sorted(str(k) for k in (latency or {}) if k not in LATENCY_KEYS)
        if bad:
            raise ConfigError(f"optim.cost.latency got unknown keys {bad}; valid keys: {', '.join(LATENCY_KEYS)}")
        self.metric, self.key = metric, METRICS[metric]
        self.scale = _number("scale", scale)
        self.latency = dict(latency or {})
        self.tree: CostTree | None = None
        self.fixed = self.span = 0.0

    def build_tree(self, model: nn.Module, space: SearchSpace) -> CostTree:
        """The cost tree of ``model`` for this metric, each of its params scored by alphas (else ConfigError)."""
        if self.metric == "latency_ms":
            from ..profilers.latency import LatencyProfiler, latency_tree

            opts = {"cache": True, **self.latency}
            tree = latency_tree(model, LatencyProfiler(opts.pop("runtime", "onnxruntime"), **opts))  # type: ignore[arg-type]
        else:
            tree = build_cost_tree(model)  # type: ignore[arg-type]  # a supernet is a GraphModule
        scored = {t.categorical for t in space.tensors().values() if t.categorical}
        for pname in tree.params():
            if pname not in scored:
                raise ConfigError(f"cost: param {pname!r} has no alphas; use a gradient mixed op")
        self.tree = tree
        self.fixed = float(tree.fixed.get(self.key, 0.0))
        self.span = max(tree.span(self.key), 1e-12 if self.metric == "latency_ms" else 1.0)
        return tree

    def expected(self, model: nn.Module, space: SearchSpace) -> torch.Tensor:
        """E[metric] (times scale) of the whole network under the current alphas, differentiable in them."""
        if self.tree is None:
            self.build_tree(model, space)
        assert self.tree is not None
        return self.tree.expected(arch_weights(space), self.key) * self.scale

    def gradients(self, model: nn.Module, space: SearchSpace, loss: torch.Tensor, grads: Sequence[torch.Tensor],
                  params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        """(the alphas' gradients with the hardware term, E[metric]) from the task loss and its gradients."""
        raise NotImplementedError


class ExpectedCost(ArchCost):
    """The additive term ``weight * (E[cost] - fixed) / cost range``: it lies in [0, weight], so ``weight``
    reads as "accuracy loss worth the whole cost range" (ProxylessNAS's expected-latency loss, any metric)."""

    def __init__(self, metric: str = "flops", weight: float = 0.1, scale: float = 1.0,
                 latency: Mapping[str, Any] | None = None) -> None:
        super().__init__(metric, scale, latency)
        self.weight = _number("weight", weight)

    def __call__(self, model: nn.Module, space: SearchSpace) -> tuple[torch.Tensor, float]:
        """(the term to add to the arch loss, the expected cost of the whole network)."""
        expected = self.expected(model, space)
        term = self.weight * (expected - self.fixed * self.scale) / (self.span * self.scale)
        return term.float(), float(expected.detach())

    def gradients(self, model: nn.Module, space: SearchSpace, loss: torch.Tensor, grads: Sequence[torch.Tensor],
                  params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        term, expected = self(model, space)
        got = torch.autograd.grad(term, list(params), allow_unused=True)
        return [g if c is None else g + c.to(g.dtype) for g, c in zip(grads, got)], expected


class CriterionCost(ArchCost):
    """``criterion(task loss, E[metric])`` (``HW_CRITERIA``: add, mul, logmul against ``target``); the task
    loss's gradients (first order or unrolled) become the combined loss's by the chain rule."""

    def __init__(self, criterion: str, metric: str = "latency_ms", scale: float = 1.0,
                 latency: Mapping[str, Any] | None = None, **options: Any) -> None:
        from ..hardware.loss import HW_CRITERIA

        super().__init__(metric, scale, latency)
        if "target" not in options:
            raise ConfigError(f"optim.cost.criterion {criterion!r} needs a target (the {metric} to aim at, "
                              f"times scale)")
        self.criterion = HW_CRITERIA.build({"type": criterion, **options}, "optim.cost")

    def gradients(self, model: nn.Module, space: SearchSpace, loss: torch.Tensor, grads: Sequence[torch.Tensor],
                  params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        from ..hardware.loss import chain_gradients

        return chain_gradients(self.criterion, loss.detach(), grads, self.expected(model, space).float(), params)


def cost_from_config(cost: Any) -> ArchCost | None:
    """The term an ``optim.cost`` option asks for (None for none); a ConfigError naming the valid keys when it
    is not a mapping of them."""
    if cost is None:
        return None
    valid = "; ".join(f"{k}: {v}" for k, v in COST_KEYS.items())
    if not isinstance(cost, Mapping):
        raise ConfigError(f"optim.cost must be a mapping ({valid}); got {cost!r}")
    unknown = sorted(str(k) for k in cost if k not in COST_KEYS)
    if unknown:
        raise ConfigError(f"optim.cost got unknown keys {unknown}; valid keys: {valid}")
    opts = dict(cost)
    if "criterion" in opts:
        return CriterionCost(**opts)
    extra = sorted(k for k in ("target", "alpha", "beta") if k in opts)
    if extra:
        raise ConfigError(f"optim.cost: {', '.join(extra)} belong to a criterion (add | mul | logmul); "
                          f"set criterion, or drop them for the additive form")
    return ExpectedCost(**opts)


__all__ = ["ArchCost", "CriterionCost", "ExpectedCost", "cost_from_config"]

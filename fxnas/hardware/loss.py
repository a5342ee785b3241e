"""The ProxylessNAS hardware loss for gradient methods: a task loss combined with an expected metric.

``ExpectedMetric`` is E[metric] of a supernet under its arch distribution (softmax of each param's alphas),
read off a cost tree: ``latency_ms`` from ``fxnas.profilers.latency.latency_tree`` (the latency table),
``macs``/``params``/bytes from ``fxnas.profilers.tree.build_cost_tree``. A ``HardwareCriterion`` (registry
``HW_CRITERIA``) combines it with the task loss against a target value T, as in ProxylessNAS:

* ``add``:    loss + weight * (E - T) / T                     (ProxylessNAS ``add#linear``)
* ``mul``:    alpha * loss * (E / T) ** beta                   (MnasNet's form as a loss factor)
* ``logmul``: alpha * loss * (log E / log T) ** beta           (ProxylessNAS ``mul#log``; needs T > 1)

``HardwareLoss`` is the pair; ``gradients`` turns the task loss's alpha gradients (computed by the optimizer,
possibly unrolled) into those of the combined loss by the chain rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import ConfigError
from ..profilers.tree import CostTree, arch_weights
from ..registry import Registry
from ..space import SearchSpace

HW_CRITERIA = Registry("hardware criterion")


def _positive(name: str, v: Any, above: float = 0.0) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not v > above:
        raise ConfigError(f"{name} must be a number > {above:g}, got {v!r}")
    return float(v)


class HardwareCriterion:
    """Base: ``criterion(task loss, metric value)`` -> the loss to minimise; ``target`` is the metric's goal."""

    def __init__(self, target: float) -> None:
        self.target = _positive("target", target)

    def __call__(self, loss: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@HW_CRITERIA.register("add")
class AddCriterion(HardwareCriterion):
    """``loss + weight * (value - target) / target`` (ProxylessNAS ``add#linear``, lambda 0.2 by default)."""

    def __init__(self, target: float, weight: float = 0.2) -> None:
        super().__init__(target)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ConfigError(f"weight must be a number >= 0, got {weight!r}")
        self.weight = float(weight)

    def __call__(self, loss: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return loss + self.weight * (value - self.target) / self.target


@HW_CRITERIA.register("mul")
class MulCriterion(HardwareCriterion):
    """``alpha * loss * (value / target) ** beta``: over the target the loss grows, under it shrinks."""

    def __init__(self, target: float, alpha: float = 1.0, beta: float = 0.6) -> None:
        super().__init__(target)
        self.alpha, self.beta = _positive("alpha", alpha), _positive("beta", beta)

    def __call__(self, loss: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self.alpha * loss * (value / self.target) ** self.beta


@HW_CRITERIA.register("logmul")
class LogMulCriterion(HardwareCriterion):
    """``alpha * loss * (log value / log target) ** beta`` (ProxylessNAS ``mul#log``, beta 0.6).

    Both logs must be positive: ``target`` > 1 in the metric's unit (give latency in microseconds for a
    sub-millisecond model); values at or under 1 are clamped just above it.
    """

    def __init__(self, target: float, alpha: float = 1.0, beta: float = 0.6) -> None:
        self.target = _positive("logmul target (in the metric's unit: latency in microseconds for a fast model)",
                                target, above=1.0)
        self.alpha, self.beta = _positive("alpha", alpha), _positive("beta", beta)

    def __call__(self, loss: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        ratio = torch.log(value.clamp_min(1.0 + 1e-6)) / math.log(self.target)
        return self.alpha * loss * ratio ** self.beta


class ExpectedMetric:
    """E[``metric``] of a cost tree's supernet under the arch distribution of ``space`` (times ``scale``,
    e.g. 1000 for latency in microseconds), a tensor differentiable in the alphas."""

    def __init__(self, tree: CostTree, metric: str = "latency_ms", scale: float = 1.0) -> None:
        self.tree, self.metric, self.scale = tree, metric, _positive("scale", scale)

    def __call__(self, space: SearchSpace) -> torch.Tensor:
        """The expectation under the current alphas (float32)."""
        return (self.tree.expected(arch_weights(space), self.metric) * self.scale).float()

    def of_arch(self, arch: dict[str, Any]) -> float:
        """The metric of one discrete arch (every param the tree uses named)."""
        return float(self.tree.evaluate(arch)[self.metric]) * self.scale


class HardwareLoss:
    """``criterion(task loss, expected(space))``: the ProxylessNAS hardware-aware arch loss."""

    def __init__(self, expected: ExpectedMetric, criterion: HardwareCriterion) -> None:
        self.expected, self.criterion = expected, criterion

    @classmethod
    def build(cls, expected: ExpectedMetric, criterion: str = "logmul", **options: Any) -> HardwareLoss:
        """From a criterion's registry name and options (``target``, ``weight``/``alpha``, ``beta``)."""
        crit = HW_CRITERIA.get(criterion)
        try:
            return cls(expected, crit(**options))
        except TypeError as exc:
            raise ConfigError(f"hardware criterion {criterion!r}: {exc}") from None

    def __call__(self, loss: torch.Tensor, space: SearchSpace) -> torch.Tensor:
        """The combined loss (differentiable in the task loss and the alphas)."""
        return self.criterion(loss, self.expected(space))

    def gradients(self, loss: torch.Tensor, loss_grads: Sequence[torch.Tensor], space: SearchSpace,
                  params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
        """(d combined / d params, E[metric]) from the task loss's value and its gradients ``loss_grads``."""
        return chain_gradients(self.criterion, loss, loss_grads, self.expected(space), params)


def chain_gradients(criterion: HardwareCriterion, loss: torch.Tensor, loss_grads: Sequence[torch.Tensor],
                    value: torch.Tensor, params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], float]:
    """Gradients of ``criterion(loss, value)`` with respect to ``params``, given the task loss's own gradients:
    dC/dp = dC/dloss * dloss/dp + dC/dvalue * dvalue/dp. Returns them and the value."""
    task = loss.detach().clone().requires_grad_(True)
    combined = criterion(task, value)
    got = torch.autograd.grad(combined, [task, *params], allow_unused=True)
    d_task, d_params = got[0], got[1:]
    out = []
    for g, dp in zip(loss_grads, d_params):
        total = d_task.to(g.dtype) * g
        out.append(total if dp is None else total + dp.to(g.dtype))
    return out, float(value.detach())

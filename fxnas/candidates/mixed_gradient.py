"""Gradient mixed ops: BinaryGate / BinaryGateUniform (ProxylessNAS) and GumbelSum (SNAS)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..space import Categorical, SearchSpace
from .mixed import MIXED_OPS, MixedOp, weighted_sum


class BinaryGateGrad(torch.autograd.Function):
    """Binary gates of the sampled paths in forward; the ProxylessNAS two-path gradient to alpha in backward.

    dL/dalpha_i = sum_j dL/dg_j * p_j * (delta_ij - p_i), i, j over the sampled paths, with
    p = softmax(alpha[sampled]) (the probabilities renormalised over the sampled paths).
    """

    @staticmethod
    def forward(ctx: Any, alpha: torch.Tensor, gates: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The gates themselves (alpha and the sampled indices are kept for backward)."""
        ctx.save_for_backward(alpha.detach(), idx)
        return gates.detach().clone()

    @staticmethod
    def backward(ctx: Any, grad_g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        """dL/dg of the sampled gates -> dL/dalpha (zero outside the sampled paths)."""
        alpha, idx = ctx.saved_tensors
        p = F.softmax(alpha[idx], dim=-1)
        gp = grad_g * p
        grad_sub = gp - p * gp.sum()
        grad_alpha = torch.zeros_like(alpha).index_add_(0, idx, grad_sub.to(alpha.dtype))
        return grad_alpha, None, None


def rescale(alpha: torch.Tensor, before: torch.Tensor, involved: Sequence[int]) -> None:
    """ProxylessNAS rescale, in place: entries not in ``involved`` go back to ``before``; the involved ones
    shift by one offset so that their log-sum-exp equals the one they had in ``before``."""
    with torch.no_grad():
        inv = torch.zeros(alpha.shape[0], dtype=torch.bool, device=alpha.device)
        if involved:
            inv[torch.as_tensor(list(involved), device=alpha.device)] = True
        before = before.to(alpha.device)
        alpha[~inv] = before[~inv]
        if inv.any():
            offset = torch.logsumexp(alpha[inv], 0) - torch.logsumexp(before[inv], 0)
            alpha[inv] -= offset


class GradientMixedOp(MixedOp):
    """Base of mixed ops with alphas; ``fixed = True`` makes them run the applied arch's candidate only."""

    uses_alpha = True


class BinaryGateMixedOp(GradientMixedOp):
    """ProxylessNAS: two paths sampled per training step, binary gates, two-path gradient to alpha.

    Training: two candidates are drawn from ``sample_probs()`` without replacement; one of them is the active
    path (drawn from softmax of their alphas) with gate 1, the other has gate 0. Both run (the inactive one
    without autograd state, so memory scales with one path), the output is ``sum_j g_j * out_j`` and
    ``dL/dg_j = <dL/dout, out_j>`` reaches alpha through ``BinaryGateGrad``. Eval: only argmax(alpha) runs.
    After the optimizer's update, ``rescale_binary_gates(model, before)`` keeps the unsampled alphas fixed.
    """

    def __init__(self, candidates: Mapping[str, nn.Module], param: Categorical, space: SearchSpace,
                 name: str = "") -> None:
        super().__init__(candidates, param, space, name)
        self.involved: list[int] = []  # paths sampled since the last rescale

    def sample_probs(self) -> torch.Tensor:
        """Distribution the two paths are drawn from: softmax(alpha)."""
        return F.softmax(self.alpha.detach(), dim=-1)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        ops = list(self.candidates.values())
        if self.fixed:
            return self.forward_chosen(*args, **kwargs)
        if not self.training or len(ops) == 1:
            return ops[int(torch.argmax(self.alpha.detach()))](*args, **kwargs)
        idx = torch.multinomial(self.sample_probs(), 2, replacement=False)
        pair = F.softmax(self.alpha.detach()[idx], dim=-1)
        active = int(torch.multinomial(pair, 1))
        gates = torch.zeros(2, dtype=self.alpha.dtype, device=self.alpha.device)
        gates[active] = 1.0
        g = BinaryGateGrad.apply(self.alpha, gates, idx)
        self.involved = sorted(set(self.involved) | set(idx.tolist()))
        out = None
        for j, i in enumerate(idx.tolist()):
            if j == active:
                y = ops[i](*args, **kwargs)
            else:
                with torch.no_grad():  # gate 0: its output only feeds dL/dg_j, no graph through the path
                    y = ops[i](*args, **kwargs)
            y = g[j] * y
            out = y if out is None else out + y
        return out


@MIXED_OPS.register("BinaryGate")
class BinaryGate(BinaryGateMixedOp):
    """ProxylessNAS (Proxyless-G): paths drawn from softmax(alpha)."""


@MIXED_OPS.register("BinaryGateUniform")
class BinaryGateUniform(BinaryGateMixedOp):
    """BinaryGate with the two paths drawn uniformly (the gradient and rescale are those of BinaryGate)."""

    def sample_probs(self) -> torch.Tensor:
        return torch.full_like(self.alpha.detach(), 1.0 / len(self.names))


@MIXED_OPS.register("GumbelSum")
class GumbelSum(GradientMixedOp):
    """SNAS: weighted sum with gumbel-softmax(alpha, temperature) weights in training, softmax(alpha) in eval.

    ``temperature`` is annealed by the GumbelAnnealing optimizer; ``hard=True`` gives one-hot
    straight-through weights.
    """

    def __init__(self, candidates: Mapping[str, nn.Module], param: Categorical, space: SearchSpace,
                 name: str = "", temperature: float = 1.0, hard: bool = False) -> None:
        super().__init__(candidates, param, space, name)
        self.temperature = float(temperature)
        self.hard = bool(hard)

    def weights(self) -> torch.Tensor:
        """Gumbel-softmax sample (training) or softmax(alpha) (eval)."""
        if self.training:
            return F.gumbel_softmax(self.alpha, tau=self.temperature, hard=self.hard)
        return F.softmax(self.alpha, dim=-1)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.fixed:
            return self.forward_chosen(*args, **kwargs)
        return weighted_sum(self.weights(), self.candidates.values(), args, kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature:.4g}"


def binary_gate_ops(model: nn.Module) -> list[BinaryGateMixedOp]:
    """Every BinaryGate-style op of ``model``."""
    return [m for m in model.modules() if isinstance(m, BinaryGateMixedOp)]


def rescale_binary_gates(model: nn.Module, before: Mapping[int, torch.Tensor]) -> int:
    """Rescale every BinaryGate alpha of ``model`` (ops sharing an alpha are rescaled once over the union of
    their sampled paths); ``before`` maps id(alpha) to its value before the update. Returns alphas rescaled."""
    groups: dict[int, tuple[torch.Tensor, set[int], list[BinaryGateMixedOp]]] = {}
    for op in binary_gate_ops(model):
        a = op.alpha
        entry = groups.setdefault(id(a), (a, set(), []))
        entry[1].update(op.involved)
        entry[2].append(op)
    n = 0
    for key, (alpha, involved, ops) in groups.items():
        if key in before and involved:
            rescale(alpha, before[key], sorted(involved))
            n += 1
        for op in ops:
            op.involved = []
    return n

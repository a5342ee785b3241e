"""BinaryGate / BinaryGateUniform (ProxylessNAS): two sampled paths, binary gates, two-path gradient, rescale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..space import Categorical, SearchSpace
from .base import MIXED_OPS, MixedOp


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


class BinaryGateMixedOp(MixedOp):
    """ProxylessNAS: two paths sampled per training step, binary gates, two-path gradient to alpha.

    Training: two candidates are drawn from ``sample_probs()`` without replacement; one of them is the active
    path (drawn from softmax of their alphas) with gate 1, the other has gate 0. Both run (the inactive one
    without autograd state, so memory scales with one path), the output is ``sum_j g_j * out_j`` and
    ``dL/dg_j = <dL/dout, out_j>`` reaches alpha through ``BinaryGateGrad``. Eval: only argmax(alpha) runs.
    Around an arch step (``before_arch_step`` / ``after_arch_step``) the ProxylessNAS rescale keeps the
    unsampled alphas fixed; ops sharing one alpha are rescaled once over the union of their sampled paths.
    """

    single_path = False
    has_alpha = True

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

    def before_arch_step(self, ctx: dict[str, Any]) -> None:
        """Forget the paths weight steps sampled; remember alpha as it was (once per shared alpha)."""
        self.involved = []
        group = ctx.setdefault("binary_gate", {}).setdefault(id(self.alpha), (self.alpha.detach().clone(), []))
        group[1].append(self)

    def after_arch_step(self, ctx: dict[str, Any]) -> Mapping[str, float]:
        """Rescale this op's alpha over the paths the arch step sampled (by the first op sharing it)."""
        group = ctx.get("binary_gate", {}).pop(id(self.alpha), None)
        if group is None:
            return {}  # a sibling sharing this alpha rescaled it
        before, ops = group
        involved = sorted({i for op in ops for i in op.involved})
        for op in ops:
            op.involved = []
        if not involved:
            return {}
        rescale(self.alpha, before, involved)
        return {"rescaled": 1.0}


@MIXED_OPS.register("BinaryGate")
class BinaryGate(BinaryGateMixedOp):
    """ProxylessNAS (Proxyless-G): paths drawn from softmax(alpha)."""


@MIXED_OPS.register("BinaryGateUniform")
class BinaryGateUniform(BinaryGateMixedOp):
    """BinaryGate with the two paths drawn uniformly (the gradient and rescale are those of BinaryGate)."""

    def sample_probs(self) -> torch.Tensor:
        return torch.full_like(self.alpha.detach(), 1.0 / len(self.names))

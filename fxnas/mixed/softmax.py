"""SoftmaxSum (DARTS): the softmax(alpha)-weighted sum of every candidate's output."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import MIXED_OPS, MixedOp, weighted_sum


@MIXED_OPS.register("SoftmaxSum")
class SoftmaxSumMixedOp(MixedOp):
    """DARTS: the softmax(alpha)-weighted sum of every candidate's output."""

    single_path = False
    has_alpha = True

    def weights(self) -> torch.Tensor:
        """softmax(alpha) over the candidates."""
        return F.softmax(self.alpha, dim=-1)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.fixed:
            return self.forward_chosen(*args, **kwargs)
        return weighted_sum(self.weights(), self.candidates.values(), args, kwargs)

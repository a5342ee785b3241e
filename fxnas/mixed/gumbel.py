"""GumbelSum (SNAS): weighted sum with gumbel-softmax(alpha, temperature) weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..space import Categorical, SearchSpace
from .base import MIXED_OPS, MixedOp, weighted_sum


@MIXED_OPS.register("GumbelSum")
class GumbelSum(MixedOp):
    """SNAS: weighted sum with gumbel-softmax(alpha, temperature) weights in training, softmax(alpha) in eval.

    ``temperature`` is annealed by a schedule (the GumbelAnnealing optimizer calls ``set_temperature``);
    ``hard=True`` gives one-hot straight-through weights.
    """

    single_path = False
    has_alpha = True

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

    def set_temperature(self, temperature: float) -> bool:
        """Sample with ``temperature`` from now on."""
        self.temperature = float(temperature)
        return True

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature:.4g}"

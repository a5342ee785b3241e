"""MixUp (Zhang et al., 2018) as a criterion that mixes the training batch (ModularNAS's MixUpLoss).

Each training batch becomes ``lam * x + (1 - lam) * x'``, ``x'`` the batch reversed (``flip``, ModularNAS's
default) or shuffled, with ``lam ~ Beta(alpha, alpha)`` drawn from torch's global generator (so a resumed run
draws the same). The other criteria of the chain then see the targets mixed the same way: class indices become
``lam * onehot(y) + (1 - lam) * onehot(y')`` (cross-entropy against them is ModularNAS's
``lam * CE(y) + (1 - lam) * CE(y')``), regression targets ``lam * y + (1 - lam) * y'``. Evaluation is not
mixed. The mixing is done once per batch, before the model's forward (ModularNAS runs a second forward).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .criteria import CRITERIA, Criterion, TargetFn, main_output


@CRITERIA.register("MixUp")
class MixUp(Criterion):
    """Mixes each training batch with its reversed (or shuffled) copy; the other criteria see mixed targets."""

    adds_term = False

    def __init__(self, alpha: float = 0.3, flip: bool = True) -> None:
        if not alpha > 0:
            raise ConfigError(f"MixUp alpha must be > 0 (lam ~ Beta(alpha, alpha)), got {alpha}")
        self.alpha, self.flip = float(alpha), bool(flip)

    def mix_batch(self, inputs: Any, target: torch.Tensor) -> tuple[Any, TargetFn]:
        """(lam * x + (1 - lam) * x', output -> mixed targets)."""
        if not isinstance(inputs, torch.Tensor):
            raise ConfigError(f"MixUp mixes tensor inputs; this batch's inputs are a {type(inputs).__name__}")
        a = torch.tensor(self.alpha)
        lam = float(torch.distributions.Beta(a, a).sample())
        n = inputs.shape[0]
        order = torch.arange(n - 1, -1, -1) if self.flip else torch.randperm(n)
        order = order.to(inputs.device)
        mixed = lam * inputs + (1.0 - lam) * inputs[order]

        def targets(output: Any) -> torch.Tensor:
            if target.dtype.is_floating_point:
                return lam * target + (1.0 - lam) * target[order]
            classes = main_output(output).shape[-1]
            onehot = F.one_hot(target.long(), classes).to(main_output(output).dtype)
            return lam * onehot + (1.0 - lam) * onehot[order]

        return mixed, targets

    def __call__(self, loss, output, target, inputs=None, model=None):  # noqa: D102
        return loss if loss is not None else torch.zeros((), device=target.device)  # its effect is the mixing

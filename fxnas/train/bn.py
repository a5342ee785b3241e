"""BatchNorm statistics helpers: recalibration for weight-sharing (SPOS) and snapshots to restore them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..compat import BatchNormBase
from ..rng import preserved_rng
from .trainer import to_device

BNState = dict[str, dict[str, torch.Tensor]]


class RunningStatsNorm(nn.Module):
    """Base of fxnas modules that keep BatchNorm running statistics without being torch BatchNorms (elastic
    BatchNorms): recalibration and snapshots treat them as BatchNorms.

    Contract: buffers ``running_mean``, ``running_var``, ``num_batches_tracked``, attributes ``momentum``
    (None: cumulative average) and ``track_running_stats``; in train mode ``forward`` updates the statistics
    as ``torch.nn.functional.batch_norm`` does.
    """

    running_mean: torch.Tensor | None
    running_var: torch.Tensor | None
    num_batches_tracked: torch.Tensor | None
    momentum: float | None
    track_running_stats: bool

    def reset_running_stats(self) -> None:
        """Mean 0, variance 1, no batch seen (as ``BatchNorm.reset_running_stats``)."""
        if self.running_mean is not None and self.running_var is not None:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.zero_()


def batchnorms(model: nn.Module) -> dict[str, BatchNormBase | RunningStatsNorm]:
    """Every BatchNorm module (torch's or a RunningStatsNorm) that tracks running statistics, by path."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, (BatchNormBase, RunningStatsNorm)) and m.track_running_stats}


def bn_state(model: nn.Module) -> BNState:
    """A copy of every BatchNorm's running mean/var/count (to restore after a recalibration)."""
    return {n: {k: getattr(m, k).detach().clone() for k in ("running_mean", "running_var", "num_batches_tracked")
                if getattr(m, k, None) is not None}
            for n, m in batchnorms(model).items()}


def load_bn_state(model: nn.Module, state: BNState) -> None:
    """Put back statistics saved by bn_state."""
    mods = batchnorms(model)
    with torch.no_grad():
        for n, s in state.items():
            for k, v in s.items():
                getattr(mods[n], k).copy_(v)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, loader: DataLoader, steps: int = 10, device: torch.device | str | None = None,
                   forward_fn: Callable[[nn.Module, Any], Any] | None = None) -> int:
    """Re-estimate BatchNorm running stats of the current path as a cumulative average over ``steps`` batches.

    Stats are reset, momentum set to None (equal weight per batch), and the model run in train mode without
    gradients. BatchNorms the current arch does not use keep their previous statistics. The model's mode, the
    BN momenta and the global RNG states are restored. Returns the number of batches used.
    ``forward_fn(model, batch)`` runs a batch (default ``model(batch[0])``); pass the trainer's ``step_fn`` for
    models trained with one, so that BN sees the inputs training gave it.
    """
    bns = batchnorms(model)
    if not bns:
        return 0
    saved = bn_state(model)
    momenta = {n: m.momentum for n, m in bns.items()}
    was = model.training
    if device is None:
        p = next(iter(model.parameters()), None)
        device = p.device if p is not None else "cpu"
    for m in bns.values():
        m.reset_running_stats()
        m.momentum = None
    model.train()
    used = 0
    try:
        with preserved_rng():  # iterating a loader draws a seed: leave the global RNGs (CUDA too) alone
            for i, batch in enumerate(loader):
                if i >= steps:
                    break
                batch = to_device(batch, device)
                if forward_fn is not None:
                    forward_fn(model, batch)
                else:
                    model(batch[0] if isinstance(batch, (tuple, list)) else batch)
                used += 1
    finally:
        for n, m in bns.items():
            m.momentum = momenta[n]
            if int(m.num_batches_tracked) == 0:  # not on the current path: keep what it had
                for k, v in saved[n].items():
                    getattr(m, k).copy_(v)
        model.train(was)
    return used

"""Elastic norms: BatchNorm, LayerNorm and GroupNorm over the kept channels (statistics sliced, not masked).

Materialised norms are built on the device of the elastic norm's tensors, so a weightless (meta) copy of a
supernet materialises too (parameter counts without copying weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..train.bn import RunningStatsNorm
from .base import ElasticModule, put, take
from .layout import Channels


def _device(*tensors: torch.Tensor | None) -> torch.device:
    return next((t.device for t in tensors if t is not None), torch.device("cpu"))


def _reset_affine(weight: torch.Tensor | None, bias: torch.Tensor | None) -> None:
    with torch.no_grad():
        if weight is not None:
            weight.fill_(1.0)
        if bias is not None:
            bias.zero_()


class ElasticBatchNorm(ElasticModule, RunningStatsNorm):
    """BatchNorm over the kept channels; in training it updates the kept channels' running statistics.

    A :class:`~fxnas.train.bn.RunningStatsNorm`: BatchNorm recalibration and snapshots treat it as a
    BatchNorm (the channels the current setting drops are reset by a recalibration).
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, channels: Channels) -> None:
        super().__init__()
        self.bn_type = type(bn)
        self.weight, self.bias = bn.weight, bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked)
        self.eps, self.momentum = bn.eps, bn.momentum
        self.affine, self.track_running_stats = bn.affine, bn.track_running_stats
        self.channels = channels
        self.train(bn.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.channels.ranges(self.values())
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_stats = not self.training or self.track_running_stats
        mean = take(self.running_mean, 0, r) if use_stats else None
        var = take(self.running_var, 0, r) if use_stats else None
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        y = F.batch_norm(x, mean, var, take(self.weight, 0, r), take(self.bias, 0, r), bn_training, factor, self.eps)
        if len(r) > 1 and self.training and mean is not None:  # statistics were updated on a copy
            with torch.no_grad():
                put(self.running_mean, 0, r, mean)
                put(self.running_var, 0, r, var)
        return y

    def materialize(self) -> nn.Module:
        """A plain BatchNorm of the kept channels with their statistics."""
        r = self.channels.ranges(self.values())
        n = sum(hi - lo for lo, hi in r)
        bn = self.bn_type(n, self.eps, self.momentum, self.affine, self.track_running_stats,
                          device=_device(self.weight, self.running_mean))
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                src = getattr(self, name)
                if src is not None:
                    getattr(bn, name).copy_(take(src, 0, r))
            if self.num_batches_tracked is not None:
                bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn.train(self.training)

    def reset_parameters(self) -> None:
        """Fresh statistics and affine params (as ``BatchNorm.reset_parameters``), for training from scratch."""
        self.reset_running_stats()
        _reset_affine(self.weight, self.bias)

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        return (2 * self.channels.count(values) * self.channels.inner if self.affine else 0), 0


class ElasticLayerNorm(ElasticModule):
    """LayerNorm over the kept features of the last axis."""

    def __init__(self, ln: nn.LayerNorm, channels: Channels) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = ln.weight, ln.bias, ln.eps
        self.channels = channels
        self.train(ln.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.channels.ranges(self.values())
        return F.layer_norm(x, (x.shape[-1],), take(self.weight, 0, r), take(self.bias, 0, r), self.eps)

    def materialize(self) -> nn.Module:
        """A plain LayerNorm of the kept features."""
        r = self.channels.ranges(self.values())
        n = sum(hi - lo for lo, hi in r)
        ln = nn.LayerNorm(n, self.eps, elementwise_affine=self.weight is not None, bias=self.bias is not None,
                          device=_device(self.weight, self.bias))
        with torch.no_grad():
            for name in ("weight", "bias"):
                if getattr(self, name) is not None:
                    getattr(ln, name).copy_(take(getattr(self, name), 0, r))
        return ln.train(self.training)

    def reset_parameters(self) -> None:
        """Affine params back to ones and zeros (as ``LayerNorm.reset_parameters``)."""
        _reset_affine(self.weight, self.bias)

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        n = self.channels.count(values) * self.channels.inner
        return n * ((self.weight is not None) + (self.bias is not None)), 0


class ElasticGroupNorm(ElasticModule):
    """GroupNorm with its group count kept; each group keeps the same channels."""

    def __init__(self, gn: nn.GroupNorm, channels: Channels) -> None:
        super().__init__()
        self.weight, self.bias, self.eps, self.num_groups = gn.weight, gn.bias, gn.eps, gn.num_groups
        self.channels = channels
        self.train(gn.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.channels.ranges(self.values())
        return F.group_norm(x, self.num_groups, take(self.weight, 0, r), take(self.bias, 0, r), self.eps)

    def materialize(self) -> nn.Module:
        """A plain GroupNorm of the kept channels."""
        r = self.channels.ranges(self.values())
        n = sum(hi - lo for lo, hi in r)
        gn = nn.GroupNorm(self.num_groups, n, self.eps, affine=self.weight is not None,
                          device=_device(self.weight, self.bias))
        with torch.no_grad():
            if self.weight is not None:
                gn.weight.copy_(take(self.weight, 0, r))
                gn.bias.copy_(take(self.bias, 0, r))
        return gn.train(self.training)

    def reset_parameters(self) -> None:
        """Affine params back to ones and zeros (as ``GroupNorm.reset_parameters``)."""
        _reset_affine(self.weight, self.bias)

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        return (2 * self.channels.count(values) if self.weight is not None else 0), 0

"""MobileNetV3 block candidates ``M3B{k}E{e}[SE][HS]``.

``M3B{k}E{e}``: expand 1x1 (x e) - depthwise kxk (stride of the slot) - project 1x1, BN after each conv,
ReLU, residual add when the stride is 1 and channels are equal. Suffix ``SE`` adds squeeze-excite (reduction
4, hard-sigmoid gate) after the depthwise conv; suffix ``HS`` uses hard-swish instead of ReLU.
Examples: ``M3B3E4``, ``M3B5E6SE``, ``M3B3E3HS``, ``M3B5E6SEHS``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..slot import SlotSpec
from .blocks import InvertedResidual
from .registry import CANDIDATES, expansion, odd_kernel, require_conv_spec


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of ``divisor``, not below 90% of ``v`` (the MobileNet rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SqueezeExcite(nn.Module):
    """Squeeze-excite: global pool, 1x1 reduce, ReLU, 1x1 expand, hard-sigmoid, channel-wise scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = make_divisible(channels / reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, mid, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


@CANDIDATES.register_family(r"M3B(\d+)E(\d+)(SE)?(HS)?", "M3B3E4")
def _m3(k: str, e: str, se: str | None, hs: str | None):
    name = f"M3B{k}E{e}{se or ''}{hs or ''}"
    odd_kernel(name, k)
    expansion(name, e)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(name, spec)
        return InvertedResidual(cin, cout, s, int(k), int(e), act=nn.Hardswish if hs else nn.ReLU,
                                se=SqueezeExcite if se else None)

    return build

"""Block candidates: inverted residual MB{k}E{e} (MobileNetV2 / ProxylessNAS)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..slot import SlotSpec
from .ops import GENERIC_DIMS, conv_bn
from .registry import CANDIDATES, conv_dims, expansion, odd_kernel, require_conv_spec


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, (squeeze-excite,) project 1x1; residual add when stride 1 and channels equal.

    MobileNetV2 / ProxylessNAS blocks use ReLU6; MobileNetV3 blocks pass ``act`` and an ``se`` module factory.
    """

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, expand: int,
                 act: type[nn.Module] = nn.ReLU6, dim: int = 2,
                 se: Callable[[int], nn.Module] | None = None) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, mid, 1, act=act, dim=dim))
        layers.append(conv_bn(mid, mid, kernel, stride, groups=mid, act=act, dim=dim))
        if se is not None:
            layers.append(se(mid))
        layers.append(conv_bn(mid, cout, 1, act=None, dim=dim))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


@CANDIDATES.register_family(r"MB(\d+)E(\d+)", "MB3E6")
def _mb(k: str, e: str):
    odd_kernel(f"MB{k}E{e}", k)
    expansion(f"MB{k}E{e}", e)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"MB{k}E{e}", spec, GENERIC_DIMS)
        return InvertedResidual(cin, cout, s, int(k), int(e), dim=conv_dims(spec))

    return build

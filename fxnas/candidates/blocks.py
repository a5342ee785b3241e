"""Block candidates: inverted residual MB{k}E{e} (MobileNetV2 / ProxylessNAS)."""

from __future__ import annotations

import torch
from torch import nn

from ..slot import SlotSpec
from .ops import GENERIC_DIMS, conv_bn
from .registry import CANDIDATES, conv_dims, require_conv_spec


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, project 1x1; residual add when stride 1 and channels equal."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, expand: int,
                 act: type[nn.Module] = nn.ReLU6, dim: int = 2) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, mid, 1, act=act, dim=dim))
        layers += [conv_bn(mid, mid, kernel, stride, groups=mid, act=act, dim=dim),
                   conv_bn(mid, cout, 1, act=None, dim=dim)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


@CANDIDATES.register_family(r"MB(\d+)E(\d+)", "MB3E6")
def _mb(k: str, e: str):
    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"MB{k}E{e}", spec, GENERIC_DIMS)
        return InvertedResidual(cin, cout, s, int(k), int(e), dim=conv_dims(spec))

    return build

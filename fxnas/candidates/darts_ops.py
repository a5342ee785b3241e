"""DARTS candidates: separable (SEP{k}), dilated separable (DIL{k}), pools (AVG{k}, MAX{k}), skip (SKIP).

As in the DARTS search code, every BatchNorm here has ``affine=False`` (the alphas, not BN scales, weigh the
ops) and ReLUs are not in-place (a mixed op feeds one input to every candidate).
"""

from __future__ import annotations

import torch
from torch import nn

from ..slot import SlotSpec
from .registry import CANDIDATES, odd_kernel, require_conv_spec


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, affine=False)


def dil_conv(cin: int, cout: int, k: int, stride: int, dilation: int) -> nn.Sequential:
    """ReLU - depthwise kxk (stride, dilation) - pointwise 1x1 - BN."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(cin, cin, k, stride, padding=dilation * (k // 2), dilation=dilation, groups=cin, bias=False),
        nn.Conv2d(cin, cout, 1, bias=False),
        _bn(cout),
    )


def sep_conv(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    """DARTS SepConv: (ReLU - dw kxk - pw 1x1 - BN) twice, the stride on the first depthwise conv."""
    return nn.Sequential(*dil_conv(cin, cin, k, stride, 1), *dil_conv(cin, cout, k, 1, 1))


def pool(kind: str, cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    """kxk max/avg pool (same padding) + BN, then a 1x1 conv-BN projection when the channels differ."""
    p: nn.Module = (nn.MaxPool2d(k, stride, k // 2) if kind == "MAX"
                    else nn.AvgPool2d(k, stride, k // 2, count_include_pad=False))
    layers: list[nn.Module] = [p, _bn(cin)]
    if cin != cout:
        layers += [nn.Conv2d(cin, cout, 1, bias=False), _bn(cout)]
    return nn.Sequential(*layers)


class FactorizedReduce(nn.Module):
    """DARTS stride-2 skip: ReLU, two 1x1 stride-2 convs on offset grids, concatenated, BN."""

    def __init__(self, cin: int, cout: int, affine: bool = False) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(cin, cout // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(cin, cout - cout // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


@CANDIDATES.register_family(r"SEP(\d+)", "SEP3")
def _sep(k: str):
    odd_kernel(f"SEP{k}", k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"SEP{k}", spec)
        return sep_conv(cin, cout, int(k), s)

    return build


@CANDIDATES.register_family(r"DIL(\d+)", "DIL3")
def _dil(k: str):
    odd_kernel(f"DIL{k}", k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"DIL{k}", spec)
        return dil_conv(cin, cout, int(k), s, 2)

    return build


@CANDIDATES.register_family(r"(AVG|MAX)(\d+)", "AVG3")
def _pool(kind: str, k: str):
    odd_kernel(f"{kind}{k}", k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"{kind}{k}", spec)
        return pool(kind, cin, cout, int(k), s)

    return build


@CANDIDATES.register("SKIP")
def skip(spec: SlotSpec) -> nn.Module:
    """DARTS skip_connect: identity, FactorizedReduce at stride 2, else a 1x1 conv-BN projection."""
    if spec.in_shape == spec.out_shape:
        return nn.Identity()
    cin, cout, s = require_conv_spec("SKIP", spec)
    if s == 2 and spec.in_shape is not None and spec.in_shape[2] % 2 == 0 and spec.in_shape[3] % 2 == 0:
        return FactorizedReduce(cin, cout)
    return nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), _bn(cout))

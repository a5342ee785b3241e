"""ShuffleNetV2 units SHU{k} and SHX{k} (ModularNAS / Single Path One-Shot's choice blocks), 1-D to 3-D slots.

A unit has two branches whose outputs are concatenated and channel-shuffled (2 groups):

* on a slot that keeps shape (stride 1, channels equal) the input is split in halves: the first half passes
  through, the second goes through the main branch;
* otherwise both branches read the whole input: a projection branch (depthwise kxk with the stride - BN -
  pointwise - BN - ReLU) keeps ``cin`` channels when the slot widens (as in SPOS), half the output otherwise,
  and the main branch gives the rest.

Main branch of ``SHU{k}``: pointwise - BN - ReLU - depthwise kxk (stride) - BN - pointwise - BN - ReLU.
Main branch of ``SHX{k}`` (Xception-like): three (depthwise kxk - BN - pointwise - BN - ReLU), the stride on
the first. The hidden width is half the output channels. The output channel count must be even (the shuffle
interleaves two halves).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ShapeError
from ..slot import SlotSpec
from .ops import BATCHNORM, CONV, GENERIC_DIMS
from .registry import CANDIDATES, Builder, conv_dims, odd_kernel, require_conv_spec


def channel_shuffle(x: torch.Tensor, channels: int, groups: int = 2) -> torch.Tensor:
    """Interleave ``groups`` equal channel groups of ``x`` (ShuffleNet's shuffle), any number of spatial dims."""
    return x.unflatten(1, (groups, channels // groups)).transpose(1, 2).flatten(1, 2)


def _dw_bn(c: int, k: int, stride: int, dim: int) -> list[nn.Module]:
    return [CONV[dim](c, c, k, stride, k // 2, groups=c, bias=False), BATCHNORM[dim](c)]


def _pw_bn_relu(cin: int, cout: int, dim: int) -> list[nn.Module]:
    return [CONV[dim](cin, cout, 1, bias=False), BATCHNORM[dim](cout), nn.ReLU()]


def shuffle_main(cin: int, mid: int, cout: int, k: int, stride: int, xception: bool, dim: int) -> nn.Sequential:
    """The main branch of a SHU (pw - dw - pw) or SHX (three dw - pw) unit."""
    if not xception:
        return nn.Sequential(*_pw_bn_relu(cin, mid, dim), *_dw_bn(mid, k, stride, dim), *_pw_bn_relu(mid, cout, dim))
    return nn.Sequential(*_dw_bn(cin, k, stride, dim), *_pw_bn_relu(cin, mid, dim),
                         *_dw_bn(mid, k, 1, dim), *_pw_bn_relu(mid, mid, dim),
                         *_dw_bn(mid, k, 1, dim), *_pw_bn_relu(mid, cout, dim))


class ShuffleUnit(nn.Module):
    """A ShuffleNetV2 unit (see the module docstring): split or project, main branch, concat, shuffle."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, xception: bool = False, dim: int = 2) -> None:
        super().__init__()
        self.cout = cout
        self.split = stride == 1 and cin == cout
        mid = cout // 2
        if self.split:
            self.keep = cin // 2
            self.proj: nn.Module | None = None
            main_in, main_out = cin - self.keep, cout - self.keep
        else:
            kept = cin if cin < cout else cout // 2  # SPOS keeps the input's channels when widening
            self.keep = 0
            self.proj = nn.Sequential(*_dw_bn(cin, kernel, stride, dim), *_pw_bn_relu(cin, kept, dim))
            main_in, main_out = cin, cout - kept
        self.main = shuffle_main(main_in, mid, main_out, kernel, stride, xception, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            out = torch.cat([x[:, :self.keep], self.main(x[:, self.keep:])], dim=1)
        else:
            out = torch.cat([self.proj(x), self.main(x)], dim=1)
        return channel_shuffle(out, self.cout)


def _unit(prefix: str, k: str, xception: bool) -> Builder:
    name = f"{prefix}{k}"
    size = odd_kernel(name, k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(name, spec, GENERIC_DIMS)
        if cout % 2 or cout < 2:
            raise ShapeError(f"candidate {name} needs an even output channel count (its shuffle interleaves two "
                             f"halves), but slot {spec.name!r} has {cout}")
        return ShuffleUnit(cin, cout, s, size, xception, conv_dims(spec))

    return build


@CANDIDATES.register_family(r"SHU(\d+)", "SHU3")
def _shu(k: str) -> Builder:
    """SHU{k}: ShuffleNetV2 unit (split / project, pw - dw kxk - pw, concat, channel shuffle)."""
    return _unit("SHU", k, False)


@CANDIDATES.register_family(r"SHX(\d+)", "SHX3")
def _shx(k: str) -> Builder:
    """SHX{k}: ShuffleNetV2 Xception unit (three dw kxk - pw in the main branch)."""
    return _unit("SHX", k, True)

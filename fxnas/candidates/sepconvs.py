"""ModularNAS's conv candidates: separable (SC{k}, SS{k}), dilated separable (DC{k}, DD{k}), factorized (FC{k}).

Each is ReLU - conv(s) - BN (the DARTS order; ReLUs are not in-place, since a mixed op feeds one input to
every candidate), with affine BatchNorm, 'same' padding and the slot's stride on the first conv, for odd
kernels 1..13. ``SC``/``SS``/``DC``/``DD`` work on 1-D, 2-D and 3-D conv slots; ``FC`` (a k x 1 conv then a
1 x k conv) on 2-D ones.

* ``SS{k}``: ReLU - depthwise kxk - pointwise 1x1 - BN (one separable conv).
* ``SC{k}``: ``SS{k}`` twice, the second at stride 1 (DARTS's sep_conv with affine BN).
* ``DC{k}``: ``SS{k}`` with its depthwise conv dilated by 2 (receptive field 2k - 1).
* ``DD{k}``: dilated by 3 (receptive field 3k - 2).
* ``FC{k}``: ReLU - conv kx1 (stride) - conv 1xk - BN.
"""

from __future__ import annotations

from torch import nn

from ..slot import SlotSpec
from .ops import BATCHNORM, CONV, GENERIC_DIMS
from .registry import CANDIDATES, Builder, conv_dims, odd_kernel, require_conv_spec


def relu_sep_bn(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, dim: int = 2) -> nn.Sequential:
    """ReLU - depthwise kxk (stride, dilation, same padding) - pointwise 1x1 - BN over ``dim`` spatial dims."""
    conv = CONV[dim]
    return nn.Sequential(
        nn.ReLU(),
        conv(cin, cin, k, stride, padding=dilation * (k // 2), dilation=dilation, groups=cin, bias=False),
        conv(cin, cout, 1, bias=False),
        BATCHNORM[dim](cout),
    )


def relu_factorized_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    """ReLU - conv kx1 (stride) - conv 1xk - BN: a kxk receptive field from 2k weights per channel pair."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(cin, cin, (k, 1), stride, padding=(k // 2, 0), bias=False),
        nn.Conv2d(cin, cout, (1, k), 1, padding=(0, k // 2), bias=False),
        nn.BatchNorm2d(cout),
    )


def _separable(prefix: str, k: str, dilation: int, repeat: int) -> Builder:
    name = f"{prefix}{k}"
    size = odd_kernel(name, k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(name, spec, GENERIC_DIMS)
        d = conv_dims(spec)
        if repeat == 1:
            return relu_sep_bn(cin, cout, size, s, dilation, d)
        return nn.Sequential(*relu_sep_bn(cin, cin, size, s, dilation, d),
                             *relu_sep_bn(cin, cout, size, 1, dilation, d))

    return build


@CANDIDATES.register_family(r"SS(\d+)", "SS3")
def _ss(k: str) -> Builder:
    """SS{k}: ReLU - depthwise kxk - pointwise 1x1 - BN (ModularNAS SepSingle)."""
    return _separable("SS", k, 1, 1)


@CANDIDATES.register_family(r"SC(\d+)", "SC3")
def _sc(k: str) -> Builder:
    """SC{k}: two separable convs (ReLU - dw kxk - pw 1x1 - BN), stride on the first (ModularNAS SepConv)."""
    return _separable("SC", k, 1, 2)


@CANDIDATES.register_family(r"DC(\d+)", "DC3")
def _dc(k: str) -> Builder:
    """DC{k}: ReLU - depthwise kxk dilation 2 - pointwise 1x1 - BN (ModularNAS DilConv, dilation 2)."""
    return _separable("DC", k, 2, 1)


@CANDIDATES.register_family(r"DD(\d+)", "DD3")
def _dd(k: str) -> Builder:
    """DD{k}: ReLU - depthwise kxk dilation 3 - pointwise 1x1 - BN (ModularNAS DilConv, dilation 3)."""
    return _separable("DD", k, 3, 1)


@CANDIDATES.register_family(r"FC(\d+)", "FC3")
def _fc(k: str) -> Builder:
    """FC{k}: ReLU - conv kx1 (stride) - conv 1xk - BN on 2-D slots (ModularNAS FacConv)."""
    name = f"FC{k}"
    size = odd_kernel(name, k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(name, spec)
        return relu_factorized_bn(cin, cout, size, s)

    return build

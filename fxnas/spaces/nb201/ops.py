"""NAS-Bench-201 candidate ops registered into CANDIDATES: RCB{k} (ReLU-Conv-BN) and AVG3P (avg pool 3x3)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ...candidates.ops import relu_conv_bn
from ...candidates.registry import CANDIDATES, odd_kernel, require_conv_spec
from ...errors import ShapeError
from ...slot import SlotSpec


@CANDIDATES.register_family(r"RCB(\d+)", "RCB3")
def _rcb(k: str) -> Callable[[SlotSpec], nn.Module]:
    odd_kernel(f"RCB{k}", k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(f"RCB{k}", spec)
        return relu_conv_bn(cin, cout, int(k), s)

    return build


@CANDIDATES.register("AVG3P")
def avg_pool3(spec: SlotSpec) -> nn.Module:
    """Average pool 3x3 (padding 1, pads excluded from the mean), no projection: NB201's ``avg_pool_3x3``."""
    cin, cout, s = require_conv_spec("AVG3P", spec)
    if cin != cout:
        raise ShapeError(f"AVG3P keeps channels but slot {spec.name!r} maps {cin} -> {cout} channels")
    return nn.AvgPool2d(3, stride=s, padding=1, count_include_pad=False)

"""ModularNAS's pooling candidates AP{k} / MP{k} (and its fixed 3x3 ``AVG`` / ``MAX``), on 1-D to 3-D slots.

``AP{k}``: kxk average pool (same padding, padding left out of the average) with the slot's stride, then an
affine BN; ``MP{k}``: max pool. When the slot changes the channel count a 1x1 conv - BN projection follows
(ModularNAS refuses such a slot instead). ``AVG`` = ``AP3`` and ``MAX`` = ``MP3`` (fxnas's ``AVG{k}`` /
``MAX{k}`` are DARTS's pools, with BN without affine parameters).
"""

from __future__ import annotations

from torch import nn

from ..slot import SlotSpec
from .ops import BATCHNORM, CONV, GENERIC_DIMS
from .registry import CANDIDATES, Builder, conv_dims, odd_kernel, require_conv_spec

AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}


def pool_bn(kind: str, cin: int, cout: int, k: int, stride: int, dim: int = 2) -> nn.Sequential:
    """kxk ``avg``/``max`` pool (same padding) - BN, then 1x1 conv - BN when ``cout`` differs from ``cin``."""
    pool: nn.Module = (MAX_POOL[dim](k, stride, k // 2) if kind == "max"
                       else AVG_POOL[dim](k, stride, k // 2, count_include_pad=False))
    layers: list[nn.Module] = [pool, BATCHNORM[dim](cin)]
    if cin != cout:
        layers += [CONV[dim](cin, cout, 1, bias=False), BATCHNORM[dim](cout)]
    return nn.Sequential(*layers)


@CANDIDATES.register_family(r"(AP|MP)(\d+)", "AP3")
def _pool(kind: str, k: str) -> Builder:
    """AP{k} / MP{k}: kxk average / max pool with the slot's stride, then BN (ModularNAS PoolBN)."""
    name = f"{kind}{k}"
    size = odd_kernel(name, k)

    def build(spec: SlotSpec) -> nn.Module:
        cin, cout, s = require_conv_spec(name, spec, GENERIC_DIMS)
        return pool_bn("avg" if kind == "AP" else "max", cin, cout, size, s, conv_dims(spec))

    return build


CANDIDATES.alias("AVG", "AP3", "ModularNAS AVG: 3x3 average pool with the slot's stride, then BN (= AP3).")
CANDIDATES.alias("MAX", "MP3", "ModularNAS MAX: 3x3 max pool with the slot's stride, then BN (= MP3).")

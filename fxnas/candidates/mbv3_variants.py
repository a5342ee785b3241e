"""ModularNAS's names for the MobileNetV3 block variants: ``M3B{k}E{e}H`` / ``S`` / ``SH``.

The same blocks as fxnas's ``M3B{k}E{e}[SE][HS]`` (fxnas.candidates.mobilenetv3), spelt as ModularNAS spells
them: ``H`` hard-swish instead of ReLU (= ``HS``), ``S`` squeeze-excite after the depthwise conv (= ``SE``),
``SH`` both (= ``SEHS``). Examples: ``M3B3E6H``, ``M3B5E3S``, ``M3B7E6SH``.
"""

from __future__ import annotations

from .mobilenetv3 import _m3
from .registry import CANDIDATES, Builder, expansion, odd_kernel

SUFFIXES = {"H": (None, "HS"), "S": ("SE", None), "SH": ("SE", "HS")}


@CANDIDATES.register_family(r"M3B(\d+)E(\d+)(SH|H|S)", "M3B3E6SH")
def _m3_modularnas(k: str, e: str, suffix: str) -> Builder:
    """M3B{k}E{e}H / S / SH: MobileNetV3 block with hard-swish (H), squeeze-excite (S) or both (SH)."""
    name = f"M3B{k}E{e}{suffix}"
    odd_kernel(name, k)  # refused here, under the name the config wrote
    expansion(name, e)
    se, hs = SUFFIXES[suffix]
    return _m3(k, e, se, hs)

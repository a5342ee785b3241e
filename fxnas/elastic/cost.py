"""The cost of an elastic setting (parameters, MACs) counted from the supernet, without materialising."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ..mixed.base import MixedOp
from ..supernet import space_of
from .base import ElasticModule


def cost(supernet: nn.Module, arch: Mapping[str, Any] | None = None) -> dict[str, int]:
    """``{"params", "macs"}`` of the subnet ``arch`` selects (unset params: their current value).

    Equal to the materialised subnet's parameter count and to its conv/linear multiply-accumulates per
    sample (as ``fxnas.profile`` counts them at batch 1). Mixed ops count their chosen candidate.
    """
    space = space_of(supernet)
    values = {**space.current(), **space.validate(arch or {})}
    seen: set[int] = set()
    total = {"params": 0, "macs": 0}

    def visit(m: nn.Module) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        if isinstance(m, ElasticModule):
            p, macs = m.cost(values)
            total["params"] += p
            total["macs"] += macs
            for child in m.active_children(values):
                visit(child)
            return
        if isinstance(m, MixedOp):
            visit(m.candidates[values[m.param.name]])
            return
        total["params"] += sum(p.numel() for p in m.parameters(recurse=False))
        for child in m.children():
            visit(child)

    visit(supernet)
    return total

"""Structural keys: equal for equal computations on equal shapes, different when anything that matters differs."""

from __future__ import annotations

import torch
from torch import nn

import fxnas
from fxnas.profilers.keys import structure_key


class Res(nn.Module):
    def __init__(self, residual: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.residual = residual  # steers forward, and repr() does not show it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


def test_keys() -> None:
    x, x2 = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 16, 16)
    a, b = Res(True), Res(True)
    assert structure_key(a, x) == structure_key(b, x)  # weights' values do not matter
    assert repr(Res(True)) == repr(Res(False)) and structure_key(a, x) != structure_key(Res(False), x)
    assert structure_key(a, x) != structure_key(a, x2) and "1x4x16x16" in structure_key(a, x2)
    assert structure_key(a, x) != structure_key(a, x.double())
    g1 = fxnas.trace(nn.Sequential(nn.ReLU(), nn.Identity()), x)
    g2 = fxnas.trace(nn.Sequential(nn.ReLU(), nn.Identity()), x)
    ident = next(n for n in g2.graph.nodes if n.target == "1")
    ident.replace_all_uses_with(ident.args[0])  # same modules, other code: the identity is skipped
    g2.graph.erase_node(ident)
    g2.recompile()
    assert structure_key(g1, x) != structure_key(g2, x)

"""Shared helpers of the candidate tests: a slot spec, a two-conv host model, a shape + fx-trace check."""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from fxnas.candidates.registry import build_candidate
from fxnas.slot import SlotSpec


def conv_spec(cin: int, cout: int, stride: int, hw: int = 8) -> SlotSpec:
    """A 3x3 conv slot of batch 2 with 'same' padding."""
    out = (hw + stride - 1) // stride
    return SlotSpec(cin, cout, stride, 3, in_shape=(2, cin, hw, hw), out_shape=(2, cout, out, out), name="s")


class TwoConv(nn.Module):
    """conv3x3 (stride 2, cin -> cmid), optional ReLU, conv3x3 (cmid -> cmid): two slots for conv3x3."""

    def __init__(self, cin: int = 4, cmid: int = 8, relu: bool = False) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(cin, cmid, 3, 2, 1)
        self.c2 = nn.Conv2d(cmid, cmid, 3, 1, 1)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(x)
        return self.c2(torch.relu(y) if self.relu else y)


def check_shape_and_trace(name: str, spec: SlotSpec) -> None:
    """Candidate ``name`` gives the slot's output shape, and plain torch.fx traces it to the same output."""
    m = build_candidate(name, spec).eval()
    x = torch.randn(spec.in_shape)
    y = m(x)
    assert tuple(y.shape) == spec.out_shape
    torch.testing.assert_close(fx.symbolic_trace(m)(x), y)

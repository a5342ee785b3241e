"""fxnas.linear_like: Hugging Face's Conv1D is a linear to patterns, slots and linear candidates."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close
from torch import nn

import fxnas
from fxnas.linear_like import as_linear, is_linear_like, is_transposed_linear

pytorch_utils = pytest.importorskip("transformers.pytorch_utils")


class Block(nn.Module):
    """A user model built from Hugging Face's layers, traced with plain fx."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = pytorch_utils.Conv1D(24, 8)  # (out, in), weight stored (in, out)
        self.proj = nn.Linear(24, 8)

    def forward(self, x):
        return self.proj(torch.relu(self.fc(x)))


def test_as_linear_computes_the_same() -> None:
    torch.manual_seed(0)
    conv1d = pytorch_utils.Conv1D(24, 8)
    nn.init.normal_(conv1d.bias)
    lin = as_linear(conv1d)
    assert is_transposed_linear(conv1d) and is_linear_like(conv1d) and not is_transposed_linear(lin)
    assert (lin.in_features, lin.out_features) == (8, 24)
    x = torch.randn(2, 5, 8)
    assert_close(lin(x), conv1d(x))
    assert as_linear(nn.Conv2d(3, 3, 1)) is None


def test_linear_pattern_slots_conv1d_and_low_rank_starts_from_its_weights() -> None:
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(2, 5, 8)
    net = fxnas.searchify(model, "linear", ["ORIG", "LR100", "IDT"], example_inputs=x).eval()
    assert set(net.space) == {"fc", "proj"}
    for arch in ({"fc": "ORIG", "proj": "ORIG"}, {"fc": "LR100", "proj": "ORIG"}):
        sub = fxnas.materialize(net, arch)
        with torch.no_grad():  # LR100: the full-rank SVD of the Conv1D's weight is the same map
            assert_close(sub(x), model(x), rtol=1e-4, atol_scale=1e-5)
    sub = fxnas.materialize(net, {"fc": "IDT", "proj": "ORIG"})  # 8 -> 24: a linear on the last dim
    assert sub(x).shape == (2, 5, 8)


def test_no_module_is_no_linear() -> None:
    assert as_linear(None) is None and not is_linear_like(None) and not is_transposed_linear(None)

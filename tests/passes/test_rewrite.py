"""The rewrite pass: matches become Slots with the right specs; the graph still computes the same."""

from __future__ import annotations

import pytest
import torch
from conftest import randomize_bn
from torch import nn

import fxnas
from fxnas.errors import HiddenByLeafWarning, PatternError, WeightsReadWarning
from fxnas.modelfile import load_model
from fxnas.slot import Slot
from fxnas.supernet import slots

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


def test_slots_and_specs() -> None:
    m = randomize_bn(load_model(TINY)).eval()
    x = torch.randn(2, 3, 32, 32)
    gm = fxnas.trace(m, x)
    found = fxnas.rewrite(gm, "conv3x3,dwconv")
    assert found == ["stem.0", "res1.conv1", "res1.conv2", "res2.conv1", "res2.conv2", "branch_a.0", "dw.dw"]
    assert list(slots(gm)) == found
    s = slots(gm)["res2.conv1"].spec
    assert (s.in_channels, s.out_channels, s.stride, s.kernel_size) == (16, 32, 2, 3)
    assert s.in_shape == (2, 16, 32, 32) and s.out_shape == (2, 32, 16, 16)
    d = slots(gm)["dw.dw"].spec
    assert d.groups == 32 and d.in_channels == 32
    torch.testing.assert_close(gm(x), m(x))  # a Slot runs its original module until lowered


def test_module_called_twice_gives_one_slot() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    m = Twice()
    x = torch.randn(1, 4, 8, 8)
    gm = fxnas.trace(m, x)
    assert fxnas.rewrite(gm, "conv3x3") == ["conv"]
    assert sum(isinstance(mod, Slot) for mod in gm.modules()) == 1
    torch.testing.assert_close(gm(x), m(x))


def test_nothing_matched() -> None:
    gm = fxnas.trace(load_model(TINY), torch.randn(1, 3, 16, 16))
    with pytest.raises(PatternError, match=r"matched nothing.*Conv2d x12.*try another pattern"):
        fxnas.rewrite(gm, nn.GRU)
    assert fxnas.rewrite(gm, nn.GRU, allow_empty=True) == []
    assert fxnas.rewrite(gm, "linear") == ["head"]
    assert fxnas.rewrite(gm, "linear", allow_empty=True) == []  # already slots: not matched again


class _Leafy(nn.Module):
    """A block kept whole by the trace (as timm's not-trace registry keeps its positional encodings)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.inner(x)


def test_modules_inside_a_leaf_are_reported_not_slotted() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _Leafy(), nn.Conv2d(4, 4, 1))
    gm = fxnas.trace(model, torch.randn(1, 3, 8, 8), leaf_modules=[_Leafy])
    assert fxnas.hidden_by_leaves(gm, "conv") == {"1": ["1.inner"]}
    assert fxnas.hidden_by_leaves(gm, "conv,linear") == {"1": ["1.inner", "1.fc"]}
    assert fxnas.hidden_by_leaves(gm, "pwconv") == {}
    with pytest.warns(HiddenByLeafWarning, match=r"1 module\(s\) that pattern 'conv' .* 1 \(_Leafy\): 1"):
        assert fxnas.rewrite(gm, "conv") == ["0", "2"]


class _ReadsWeight(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.head(self.conv(x)) + self.conv.weight.sum()  # the weight as a value: no slot can stand in


def test_a_module_whose_weights_are_read_as_values_is_not_slotted_and_said() -> None:
    gm = fxnas.trace(_ReadsWeight(), torch.randn(1, 3, 4, 4))
    with pytest.warns(WeightsReadWarning, match=r"1 module\(s\) .* stay as they are: .*\(conv\)"):
        assert fxnas.rewrite(gm, "conv") == ["head"]

"""Slot and SlotSpec: what a replaced module needed, read off convs, linears and arbitrary blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fxnas.slot import Slot, SlotSpec, spec_from_module


def test_spec_from_conv() -> None:
    conv = nn.Conv2d(8, 16, 5, stride=2, padding=4, dilation=2, groups=2, bias=True)
    s = spec_from_module(conv, (1, 8, 32, 32), (1, 16, 16, 16), name="a.b")
    assert (s.in_channels, s.out_channels, s.stride, s.kernel_size, s.groups, s.dilation, s.bias) == \
        (8, 16, 2, 5, 2, 2, True)
    assert s.spatial_out == (16, 16) and s.name == "a.b" and s.original is conv


def test_spec_from_linear_and_block() -> None:
    s = spec_from_module(nn.Linear(12, 3, bias=False), (4, 12), (4, 3))
    assert (s.in_channels, s.out_channels, s.bias, s.spatial_out) == (12, 3, False, ())
    block = nn.Sequential(nn.Conv2d(4, 6, 3, 2, 1), nn.ReLU())
    s = spec_from_module(block, (1, 4, 16, 16), (1, 6, 8, 8))
    assert (s.in_channels, s.out_channels, s.stride, s.kernel_size) == (4, 6, 2, None)


def test_describe_is_plain_data_and_with_copies() -> None:
    s = spec_from_module(nn.Conv2d(3, 4, 3, padding=1), (1, 3, 8, 8), (1, 4, 8, 8), "c")
    d = s.describe()
    assert d["original"] == "Conv2d" and d["in_shape"] == [1, 3, 8, 8]
    assert all(not isinstance(v, nn.Module) for v in d.values())
    t = s.with_(stride=2)
    assert t.stride == 2 and s.stride == 1 and t.original is s.original
    assert s == t.with_(stride=1)  # the original module does not take part in equality


def test_slot_runs_original_until_lowered() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    slot = Slot(spec_from_module(conv, (1, 3, 8, 8), (1, 4, 8, 8), "c"))
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(slot(x), conv(x))
    assert "'c'" in repr(slot) and "stride=1" in repr(slot)
    with pytest.raises(RuntimeError, match="no original module"):
        Slot(SlotSpec(name="empty"))(x)

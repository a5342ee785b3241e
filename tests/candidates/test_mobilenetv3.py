"""MobileNetV3 candidates M3B{k}E{e}[SE][HS]: structure, residual, squeeze-excite, materialize == supernet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fxnas
from fxnas.candidates.blocks import InvertedResidual
from fxnas.candidates.mobilenetv3 import SqueezeExcite, make_divisible
from fxnas.candidates.registry import build_candidate
from fxnas.errors import RegistryError, ShapeError
from fxnas.slot import SlotSpec

from .conftest import TwoConv, check_shape_and_trace, conv_spec

NAMES = ["M3B3E4", "M3B5E6SE", "M3B3E3HS", "M3B5E6SEHS", "M3B3E1"]


spec = conv_spec


def test_names_parse_into_blocks() -> None:
    m = build_candidate("M3B5E6SEHS", spec(8, 8, 1))
    assert isinstance(m, InvertedResidual) and m.residual
    dw = [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.groups > 1][0]
    assert dw.kernel_size == (5, 5) and dw.in_channels == 48
    assert any(isinstance(x, SqueezeExcite) for x in m.modules())
    assert any(isinstance(x, nn.Hardswish) for x in m.modules())
    plain = build_candidate("M3B3E4", spec(8, 16, 2))
    assert not plain.residual
    assert not any(isinstance(x, (SqueezeExcite, nn.Hardswish)) for x in plain.modules())
    assert any(isinstance(x, nn.ReLU) for x in plain.modules())
    no_expand = build_candidate("M3B3E1", spec(8, 8, 1))
    assert len([c for c in no_expand.modules() if isinstance(c, nn.Conv2d)]) == 2


def test_bad_names_and_specs() -> None:
    with pytest.raises(RegistryError):
        build_candidate("M3B3E4XX", spec(8, 8, 1))
    with pytest.raises(ShapeError, match="M3B3E4"):
        build_candidate("M3B3E4", SlotSpec(8, 8, in_shape=(2, 8), out_shape=(2, 8)))


def test_squeeze_excite_scales_channels() -> None:
    se = SqueezeExcite(16)
    assert se.fc1.out_channels == make_divisible(16 / 4) == 8
    x = torch.randn(2, 16, 4, 4)
    y = se(x)
    ratio = y / x  # one gate in [0, 1] per (sample, channel)
    torch.testing.assert_close(ratio, ratio[:, :, :1, :1].expand_as(ratio))
    assert (ratio >= 0).all() and (ratio <= 1).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cin,cout,stride", [(8, 8, 1), (8, 16, 2)])
def test_shape_and_plain_fx_trace(name: str, cin: int, cout: int, stride: int) -> None:
    check_shape_and_trace(name, spec(cin, cout, stride))


def test_materialize_equals_supernet(rand_bn) -> None:
    x = torch.randn(2, 8, 8, 8)
    sn = fxnas.searchify(TwoConv(8, 16), "conv3x3", NAMES, x, mixed_op="Index")
    rand_bn(sn)
    sn.eval()
    for name in NAMES:
        arch = {"c1": name, "c2": NAMES[-1 - NAMES.index(name)]}
        sn.space.apply(arch)
        sub = fxnas.materialize(sn, arch).eval()
        assert not any(type(m).__module__.startswith("fxnas.") for m in sub.modules())
        torch.testing.assert_close(sub(x), sn(x))

"""Candidates are built from a SlotSpec alone and give the slot's output shape; mixed ops run them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fxnas.candidates import CANDIDATES, build_candidate
from fxnas.errors import ShapeError
from fxnas.mixed import IndexMixedOp
from fxnas.passes.construct import check_shape
from fxnas.slot import SlotSpec
from fxnas.space import Categorical, SearchSpace

NAMES = ["NC3", "NC5", "NC7", "DW3", "DW5", "DW7"] + [f"MB{k}E{e}" for k in (3, 5, 7) for e in (1, 3, 6)] + \
    ["IDT", "NIL"]


def spec(cin: int, cout: int, stride: int, hw: int = 16) -> SlotSpec:
    out_hw = (hw - 1) // stride + 1  # a same-padded conv's output size
    return SlotSpec(in_channels=cin, out_channels=cout, stride=stride, kernel_size=3,
                    in_shape=(2, cin, hw, hw), out_shape=(2, cout, out_hw, out_hw), name="s")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("cin, cout, stride", [(8, 8, 1), (8, 16, 2), (6, 4, 1)])
def test_output_shape_from_spec_alone(name: str, cin: int, cout: int, stride: int) -> None:
    s = spec(cin, cout, stride, hw=15)  # odd size: padding mistakes show up
    m = build_candidate(name, s).eval()
    check_shape(name, m, s)
    y = m(torch.randn(s.in_shape))
    assert tuple(y.shape) == s.out_shape


def test_mb_residual_and_expansion() -> None:
    m = build_candidate("MB5E6", spec(8, 8, 1))
    assert m.residual and m.body[0][0].out_channels == 48 and m.body[1][0].kernel_size == (5, 5)
    assert m.body[1][0].groups == 48
    assert not build_candidate("MB3E6", spec(8, 16, 1)).residual
    assert not build_candidate("MB3E6", spec(8, 8, 2)).residual
    assert len(build_candidate("MB3E1", spec(8, 8, 1)).body) == 2  # no expansion conv at E1


def test_dw_and_nc_structure() -> None:
    dw = build_candidate("DW7", spec(8, 16, 2))
    assert dw[0][0].groups == 8 and dw[0][0].kernel_size == (7, 7) and dw[0][0].stride == (2, 2)
    nc = build_candidate("NC5", spec(8, 16, 1))
    assert nc[0].kernel_size == (5, 5) and isinstance(nc[1], nn.BatchNorm2d) and isinstance(nc[2], nn.ReLU)


def test_idt_nil_orig() -> None:
    x = torch.randn(2, 8, 16, 16)
    assert isinstance(build_candidate("IDT", spec(8, 8, 1)), nn.Identity)
    proj = build_candidate("IDT", spec(8, 16, 2))
    assert proj[0].kernel_size == (1, 1) and proj[0].stride == (2, 2)
    lin = build_candidate("IDT", SlotSpec(in_channels=5, out_channels=3, in_shape=(2, 5), out_shape=(2, 3)))
    assert isinstance(lin, nn.Linear)
    z = build_candidate("NIL", spec(8, 4, 2))
    assert torch.count_nonzero(z(x)) == 0 and z(x).shape == (2, 4, 8, 8)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    s = spec(8, 8, 1).with_(original=conv)
    orig = build_candidate("ORIG", s)
    assert orig is not conv
    torch.testing.assert_close(orig(x), conv(x))
    with pytest.raises(ValueError, match="no original module"):
        build_candidate("ORIG", spec(8, 8, 1))
    with pytest.raises(ValueError, match="output shape"):
        build_candidate("NIL", SlotSpec(name="x"))


def test_shape_errors() -> None:
    s2d = SlotSpec(in_channels=5, out_channels=3, in_shape=(2, 5), out_shape=(2, 3), name="fc")
    for name in ("NC3", "DW3", "MB3E3"):
        with pytest.raises(ShapeError, match="needs a 3-D NCL or 4-D NCHW or 5-D NCDHW slot, but slot 'fc'"):
            build_candidate(name, s2d)
    bad = spec(8, 8, 1).with_(out_shape=(2, 8, 4, 4))
    with pytest.raises(ShapeError, match=r"gives shape \(2, 8, 16, 16\), the slot needs \(2, 8, 4, 4\)"):
        check_shape("NC3", build_candidate("NC3", bad), bad)


def test_every_listed_name_is_registered() -> None:
    for n in NAMES + ["ORIG"]:
        assert n in CANDIDATES


def test_index_mixed_op_follows_space() -> None:
    space = SearchSpace()
    p = space.add(Categorical("op", ["a", "b"]))
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    op = IndexMixedOp({"a": a, "b": b}, p, space, name="op")
    x = torch.randn(2, 3)
    torch.testing.assert_close(op(x), a(x))
    space.apply({"op": "b"})
    torch.testing.assert_close(op(x), b(x))
    assert op.chosen() is b and "chosen=b" in repr(op)
    with pytest.raises(AttributeError, match="alpha"):
        op.alpha  # noqa: B018

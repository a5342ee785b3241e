"""DARTS candidates: structure as in the DARTS code, shapes at any stride, materialize == supernet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fxnas
from fxnas.candidates.darts_ops import FactorizedReduce
from fxnas.candidates.registry import build_candidate

from .conftest import TwoConv, check_shape_and_trace, conv_spec

DARTS_OPS = ["SEP3", "SEP5", "DIL3", "DIL5", "AVG3", "MAX3", "SKIP", "NIL", "IDT"]


spec = conv_spec


def convs(m: nn.Module) -> list[nn.Conv2d]:
    return [c for c in m.modules() if isinstance(c, nn.Conv2d)]


def test_sep_conv_is_darts_sepconv() -> None:
    m = build_candidate("SEP3", spec(6, 6, 2))
    cs = convs(m)
    assert [(c.groups, c.kernel_size[0], c.stride[0]) for c in cs] == [(6, 3, 2), (1, 1, 1), (6, 3, 1), (1, 1, 1)]
    assert sum(p.numel() for p in m.parameters()) == 2 * (6 * 9 + 6 * 6)  # BN affine=False: no BN params
    kinds = [type(x).__name__ for x in m]
    assert kinds == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"] * 2
    assert all(not r.inplace for r in m.modules() if isinstance(r, nn.ReLU))


def test_dil_conv_is_dilated_separable() -> None:
    m = build_candidate("DIL5", spec(4, 8, 1))
    dw, pw = convs(m)
    assert dw.dilation == (2, 2) and dw.groups == 4 and dw.kernel_size == (5, 5) and dw.padding == (4, 4)
    assert pw.out_channels == 8


@pytest.mark.parametrize("name", ["AVG3", "MAX3"])
def test_pool_projects_only_when_channels_differ(name: str) -> None:
    assert convs(build_candidate(name, spec(4, 4, 2))) == []
    (proj,) = convs(build_candidate(name, spec(4, 8, 2)))
    assert proj.kernel_size == (1, 1) and proj.out_channels == 8


def test_skip_is_identity_or_factorized_reduce() -> None:
    assert isinstance(build_candidate("SKIP", spec(4, 4, 1)), nn.Identity)
    assert isinstance(build_candidate("SKIP", spec(4, 8, 2)), FactorizedReduce)


@pytest.mark.parametrize("name", DARTS_OPS)
@pytest.mark.parametrize("cin,cout,stride,hw", [(4, 4, 1, 8), (4, 8, 2, 8), (4, 4, 2, 7)])
def test_shape_and_plain_fx_trace(name: str, cin: int, cout: int, stride: int, hw: int) -> None:
    check_shape_and_trace(name, spec(cin, cout, stride, hw))


@pytest.mark.parametrize("name", DARTS_OPS)
def test_materialize_equals_supernet(name: str, rand_bn) -> None:
    x = torch.randn(2, 4, 8, 8)
    sn = fxnas.searchify(TwoConv(4, 8), "conv3x3", DARTS_OPS, x, mixed_op="Index")
    rand_bn(sn)
    sn.eval()
    arch = {"c1": name, "c2": name}
    sn.space.apply(arch)
    sub = fxnas.materialize(sn, arch).eval()
    assert not any(type(m).__module__.startswith("fxnas.") for m in sub.modules())
    y = sn(x)
    torch.testing.assert_close(sub(x), y)
    if name != "NIL":
        assert y.abs().max() > 0

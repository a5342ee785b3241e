"""ModularNAS's candidate catalogue: SC/SS/DC/DD/FC/AP/MP for odd k in 1-13, M3B{k}E{e}H/S/SH, SHU/SHX:
every size gives the slot's shape on the layouts it takes, receptive fields and pool values are what the names
say, the ModularNAS spellings build fxnas's blocks, and bad names or slots are refused with the reason."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import fxnas
from fxnas.candidates import CANDIDATES
from fxnas.candidates.registry import build_candidate
from fxnas.candidates.shufflenet import ShuffleUnit, channel_shuffle
from fxnas.config import load_config
from fxnas.errors import ConfigError, RegistryError, ShapeError
from fxnas.slot import SlotSpec
from fxnas.train import CRITERIA

from .conftest import check_shape_and_trace, conv_spec

KERNELS = [1, 3, 5, 7, 9, 11, 13]
GENERIC = ["SC", "SS", "DC", "DD", "AP", "MP"]


def spec_1d(cin: int, cout: int, stride: int, length: int = 16) -> SlotSpec:
    out = (length + stride - 1) // stride
    return SlotSpec(cin, cout, stride, 3, in_shape=(2, cin, length), out_shape=(2, cout, out), name="s")


def _shape(name: str, spec: SlotSpec) -> None:
    assert tuple(build_candidate(name, spec)(torch.randn(spec.in_shape)).shape) == spec.out_shape, name


@pytest.mark.parametrize("family", GENERIC + ["FC"])
def test_every_kernel_gives_the_slot_shape_and_traces(family: str) -> None:
    for k in KERNELS:
        for cin, cout, stride in ((8, 8, 1), (8, 16, 2), (6, 4, 1)):
            check = check_shape_and_trace if k in (1, 13) else _shape  # fx traces the ends of the range
            check(f"{family}{k}", conv_spec(cin, cout, stride, hw=9))
            if family != "FC":
                check(f"{family}{k}", spec_1d(cin, cout, stride))
    if family == "FC":
        with pytest.raises(ShapeError, match="4-D NCHW"):
            build_candidate("FC3", spec_1d(8, 8, 1))


def _reach(name: str, size: int = 31) -> int:
    """How far (in pixels, along the width) the centre output of candidate ``name`` sees into the input."""
    torch.manual_seed(0)
    m = build_candidate(name, conv_spec(2, 2, 1, hw=size)).eval()
    x = torch.randn(1, 2, size, size, requires_grad=True)
    m(x)[0, :, size // 2, size // 2].sum().backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
    return int(cols.max() - size // 2)


@pytest.mark.parametrize(("name", "reach"), [("SS5", 2), ("SC5", 4), ("DC5", 4), ("DD5", 6), ("FC7", 3),
                                             ("DC3", 2), ("DD3", 3), ("SS1", 0), ("AP5", 2)])
def test_receptive_field_follows_kernel_and_dilation(name: str, reach: int) -> None:
    assert _reach(name) == reach


def test_pools_average_and_max() -> None:
    x = torch.arange(2 * 8 * 8 * 2, dtype=torch.float32).view(2, 2, 8, 8)
    ap, mp = build_candidate("AP3", conv_spec(2, 2, 1)).eval(), build_candidate("MP3", conv_spec(2, 2, 1)).eval()
    with torch.no_grad():  # fresh eval-mode BN is the identity (up to its eps)
        torch.testing.assert_close(ap(x)[..., 3, 3], x[..., 2:5, 2:5].mean((-1, -2)), rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(mp(x)[..., 3, 3], x[..., 2:5, 2:5].amax((-1, -2)), rtol=1e-4, atol=1e-3)
        # at the corner the padding is left out of the average
        torch.testing.assert_close(ap(x)[..., 0, 0], x[..., :2, :2].mean((-1, -2)), rtol=1e-4, atol=1e-3)
    assert isinstance(build_candidate("AP3", conv_spec(2, 4, 2))[-2], nn.Conv2d)  # channels differ: 1x1 projection
    assert type(build_candidate("AVG", conv_spec(2, 2, 1))[0]) is nn.AvgPool2d
    assert type(build_candidate("MAX", conv_spec(2, 2, 2))[0]) is nn.MaxPool2d


@pytest.mark.parametrize(("modnas", "fxnas_name"), [("M3B3E6H", "M3B3E6HS"), ("M3B5E3S", "M3B5E3SE"),
                                                    ("M3B7E9SH", "M3B7E9SEHS"), ("M3B9E1H", "M3B9E1HS")])
def test_modularnas_m3b_names_are_fxnas_blocks(modnas: str, fxnas_name: str) -> None:
    spec = conv_spec(8, 8, 1)
    torch.manual_seed(0)
    a = build_candidate(modnas, spec).eval()
    b = build_candidate(fxnas_name, spec).eval()
    b.load_state_dict(a.state_dict())
    assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()]
    x = torch.randn(spec.in_shape)
    torch.testing.assert_close(a(x), b(x))


def test_m3b_every_kernel_and_expansion() -> None:
    spec, x = conv_spec(8, 16, 2), torch.randn(2, 8, 8, 8)
    for k in (3, 5, 7, 9):
        for e in range(1, 10):
            for name in (f"MB{k}E{e}", f"M3B{k}E{e}", f"M3B{k}E{e}H", f"M3B{k}E{e}S", f"M3B{k}E{e}SH"):
                m = build_candidate(name, spec)
                dw = [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.groups > 1][0]
                assert (dw.kernel_size, dw.in_channels) == ((k, k), 8 * e), name
    for name in ("M3B9E9SH", "M3B3E1H", "MB9E9"):
        assert tuple(build_candidate(name, spec)(x).shape) == spec.out_shape


@pytest.mark.parametrize("family", ["SHU", "SHX"])
def test_shuffle_units_every_kernel_and_layout(family: str) -> None:
    for k in (3, 5, 7, 9):
        check = check_shape_and_trace if k == 3 else _shape
        for cin, cout, stride in ((8, 8, 1), (8, 8, 2), (8, 16, 2), (16, 8, 1), (3, 8, 1)):
            check(f"{family}{k}", conv_spec(cin, cout, stride))
            check(f"{family}{k}", spec_1d(cin, cout, stride))


def test_shuffle_unit_passes_half_its_input_through() -> None:
    torch.manual_seed(0)
    unit = build_candidate("SHU3", conv_spec(8, 8, 1)).eval()
    assert isinstance(unit, ShuffleUnit) and unit.split
    x = torch.randn(2, 8, 8, 8)
    y = unit(x)
    torch.testing.assert_close(y[:, 0::2], x[:, :4])  # the shuffle puts the kept half on even channels
    assert not torch.allclose(y[:, 1::2], x[:, 4:])
    widen = build_candidate("SHX5", conv_spec(4, 16, 2))
    assert widen.proj[-3].out_channels == 4  # SPOS: the projection keeps the input channels, main gives 12
    torch.testing.assert_close(channel_shuffle(torch.arange(6.0).view(1, 6), 6), torch.tensor([[0., 3, 1, 4, 2, 5]]))


def test_catalogue_candidates_in_a_search_materialise_exactly() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    names = ["SC5", "SS7", "DC3", "DD5", "FC3", "AP5", "MP3", "M3B3E3SH", "SHU5", "SHX3"]
    x = torch.randn(2, 3, 8, 8)
    sn = fxnas.searchify(net, "conv3x3", names, x).eval()
    for first, second in zip(names[::3], names[1::3]):  # the contract tests run each family alone
        arch = dict(zip(sn.space, (first, second)))
        sn.space.apply(arch)
        with torch.no_grad():
            torch.testing.assert_close(fxnas.materialize(sn, arch)(x), sn(x))


@pytest.mark.parametrize("bad", ["SC2", "SS15", "DC0", "FC14", "AP4", "MP15", "SHU4", "SHX2", "M3B4E6H",
                                 "M3B3E0SH"])
def test_bad_numbers_are_refused_when_the_config_is_read(bad: str) -> None:
    with pytest.raises(RegistryError, match="not valid"):
        build_candidate(bad, conv_spec(8, 8, 1))
    config = {"name": "x", "model": {"type": "tiny_net"}, "optim": "Random", "estim": "SubNet",
              "construct": {"pattern": "conv3x3", "candidates": ["NC3", bad]}}
    with pytest.raises(ConfigError, match=bad):
        load_config(config)


def test_shuffle_unit_refuses_odd_output_channels() -> None:
    with pytest.raises(ShapeError, match="even output channel"):
        build_candidate("SHU3", conv_spec(8, 7, 1))
    lin = SlotSpec(8, 8, in_shape=(2, 8), out_shape=(2, 8), name="fc")
    with pytest.raises(ShapeError, match="SHX3"):
        build_candidate("SHX3", lin)


def test_every_fxnas_name_of_the_modularnas_page_is_registered() -> None:
    """docs/modularnas.md's fxnas column names registered candidates (families with their numbers filled in)."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "modularnas.md").read_text()
    table = page.split("## Candidates")[1].split("## Criteria")[0]
    names = set()
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) > 3 and cells[2].strip().startswith("`"):
            names |= set(re.findall(r"`([^`]+)`", cells[2]))
    assert len(names) >= 15
    for name in names:
        filled = name.replace("{k}", "3").replace("{e}", "6").replace("...", "M3B3E6")
        assert filled in CANDIDATES, name
    criteria = page.split("## Criteria")[1].split("## Routines")[0]
    rows = [r for r in criteria.splitlines() if r.startswith("|") and not r.startswith("|---")][1:]
    assert len(rows) >= 7
    for row in rows:
        for name in re.findall(r"`([A-Z][A-Za-z]+)`", row.split("|")[2]):
            assert name in CRITERIA, name

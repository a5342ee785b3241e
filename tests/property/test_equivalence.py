"""Property-based equivalence on random small CNNs (tests/property/models.py):

- searchify with a random pattern and candidates: every sampled arch materialises to a plain module equal to
  the supernet at that arch;
- elasticize with random width/kernel/depth choices and a random subset of the groups: the largest setting
  is the model, and every sampled setting materialises to a plain module equal to the supernet, costed as
  the space predicts;
- the materialised modules export to ONNX that onnxruntime runs to the torch output.

Each property runs under the ``ci`` profile in the default suite and the ``slow`` profile under ``-m slow``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import assert_close, randomize_bn
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import fxnas
from fxnas.api import build_supernet
from fxnas.elastic import channel_groups, cost, elastic_params, elasticize, largest
from fxnas.passes.patterns import PATTERNS

from .conftest import examples
from .models import NetSpec, build, net_specs

PATTERN_NAMES = {1: ("conv1d", "dwconv1d", "linear"), 2: ("conv", "conv3x3", "conv5x5", "dwconv", "pwconv", "linear")}
CONV_CANDIDATES = ("ORIG", "NC3", "NC5", "DW3", "MB3E3", "IDT", "NIL")
LINEAR_CANDIDATES = ("ORIG", "IDT", "NIL")


def _matching(model: nn.Module, dim: int) -> list[str]:
    """The patterns (of this dimensionality) that select at least one module of ``model``."""
    return [p for p in PATTERN_NAMES[dim]
            if any(PATTERNS.get(p).predicate(m, None) for m in model.modules())]


def _plain(m: nn.Module) -> list[str]:
    return [n for n, mod in m.named_modules() if type(mod).__module__.startswith("fxnas")]


def check_arch(net: torch.fx.GraphModule, x: torch.Tensor, arch: dict[str, Any], elastic: bool = False,
               onnx_path: Any = None) -> nn.Module:
    """``arch`` materialises to plain torch equal to the supernet at ``arch`` (and, elastic, costed as
    predicted; with ``onnx_path``, exported to ONNX that matches torch)."""
    sub = fxnas.materialize(net, arch).eval()
    assert not _plain(sub), _plain(sub)
    before = net.space.current()
    net.space.apply(arch)
    try:
        with torch.no_grad():
            assert_close(sub(x), net(x))
        if elastic:
            predicted = cost(net, arch)
            assert predicted["params"] == sum(p.numel() for p in sub.parameters())
            assert predicted["macs"] == fxnas.profile(sub, x[:1])["macs"]
    finally:
        net.space.apply(before)
    if onnx_path is not None:
        fxnas.export_onnx(sub, x, onnx_path)  # raises when onnxruntime disagrees with torch
    return sub


@st.composite
def searchified(draw: st.DrawFn, dims: tuple[int, ...] = (1, 2)) -> tuple[NetSpec, nn.Module, str, tuple[str, ...]]:
    """A random model, a pattern that matches it and candidates for that pattern."""
    spec = draw(net_specs(dims))
    model = build(spec)
    pattern = draw(st.sampled_from(_matching(model, spec.dim)))
    pool = LINEAR_CANDIDATES if pattern == "linear" else CONV_CANDIDATES
    cands = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True)))
    return spec, model, pattern, cands


def _searchify_property(case: tuple, seeds: list[int]) -> None:
    spec, model, pattern, cands = case
    x = spec.example()
    net = randomize_bn(build_supernet(model, pattern, cands, x, seed=0), 1).eval()  # candidates' BNs too
    for seed in seeds:
        check_arch(net, x, net.space.sample(seed))


@st.composite
def elastic_options(draw: st.DrawFn, model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Random elasticize options: width ratios, kernels, depth and a subset of the groups that may shrink."""
    names = sorted(g.name for g in channel_groups(model, x).elastic())
    opts: dict[str, Any] = {"divisor": draw(st.sampled_from((1, 2, 4)))}
    if draw(st.sampled_from((True, True, True, False))) or not names:  # mostly with widths: most groups
        opts["width"] = tuple(sorted(draw(st.lists(st.sampled_from((0.25, 0.5, 0.75)), min_size=1,
                                                   max_size=2, unique=True)) + [1.0]))
        if names and draw(st.booleans()):
            chosen = set(draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
            opts["groups"] = lambda g, chosen=frozenset(chosen): g.name in chosen
    if draw(st.booleans()):
        opts["kernel"] = tuple(sorted(draw(st.lists(st.sampled_from((1, 3, 5)), min_size=1, max_size=2,
                                                    unique=True)) + [3]))
        opts["kernel_layers"] = draw(st.sampled_from(("depthwise", "all")))
    if draw(st.booleans()):
        opts["depth"] = (0, 1)
    return opts


def _elastic_property(data: st.DataObject, spec: NetSpec, seeds: list[int], onnx_path: Any = None) -> None:
    model = build(spec)
    x = spec.example()
    opts = data.draw(elastic_options(model, x), label="elasticize options")
    net = elasticize(model, x, **opts).eval()
    top = largest(net)
    net.space.apply(top)
    with torch.no_grad():
        assert_close(net(x), model(x))  # channels reordered, everything at its largest: the model's function
    full = check_arch(net, x, top, elastic=True)
    assert sum(p.numel() for p in full.parameters()) == sum(p.numel() for p in model.parameters())
    if elastic_params(net):
        for seed in seeds:
            check_arch(net, x, net.space.sample(seed), elastic=True, onnx_path=onnx_path)


@examples("ci")
@given(searchified(), st.lists(st.integers(0, 2**16), min_size=1, max_size=3))
def test_searchify_archs_materialise_to_the_supernet(case: tuple, seeds: list[int]) -> None:
    _searchify_property(case, seeds)


@pytest.mark.slow
@examples("slow")
@given(searchified(), st.lists(st.integers(0, 2**16), min_size=1, max_size=3))
def test_searchify_archs_materialise_to_the_supernet_slow(case: tuple, seeds: list[int]) -> None:
    _searchify_property(case, seeds)


@examples("ci")
@given(st.data(), net_specs(), st.lists(st.integers(0, 2**16), min_size=1, max_size=3))
def test_elastic_settings_materialise_to_the_supernet(data: st.DataObject, spec: NetSpec, seeds: list[int]) -> None:
    _elastic_property(data, spec, seeds)


@pytest.mark.slow
@examples("slow")
@given(st.data(), net_specs(), st.lists(st.integers(0, 2**16), min_size=1, max_size=3))
def test_elastic_settings_materialise_to_the_supernet_slow(data: st.DataObject, spec: NetSpec,
                                                           seeds: list[int]) -> None:
    _elastic_property(data, spec, seeds)


def _onnx_property(data: st.DataObject, case: tuple, tmp: Any) -> None:
    spec, model, pattern, cands = case
    x = spec.example()
    net = randomize_bn(build_supernet(model, pattern, cands, x, seed=0), 1).eval()
    check_arch(net, x, net.space.sample(data.draw(st.integers(0, 2**16), label="arch seed")),
               onnx_path=tmp / "searchified.onnx")
    _elastic_property(data, spec, [data.draw(st.integers(0, 2**16), label="setting seed")],
                      onnx_path=tmp / "elastic.onnx")


@examples("ci", scale=0.2)
@given(st.data(), searchified())
def test_materialised_subnets_export_to_onnx(tmp_path_factory, data: st.DataObject, case: tuple) -> None:
    _onnx_property(data, case, tmp_path_factory.mktemp("onnx"))


@pytest.mark.slow
@examples("slow", scale=0.2)
@given(st.data(), searchified())
def test_materialised_subnets_export_to_onnx_slow(tmp_path_factory, data: st.DataObject, case: tuple) -> None:
    _onnx_property(data, case, tmp_path_factory.mktemp("onnx"))


def _searchified_elastic_property(data: st.DataObject, case: tuple) -> None:
    """elasticize on a searchify supernet: one space holding both kinds of params; every sampled arch still
    materialises to the supernet (the candidates became elastic too)."""
    spec, model, pattern, cands = case
    x = spec.example()
    net = randomize_bn(build_supernet(model, pattern, cands, x, seed=0), 1).eval()
    opts = data.draw(elastic_options(net, x), label="elasticize options")
    enet = elasticize(net, x, **opts).eval()
    assert set(net.space) <= set(enet.space)
    for seed in data.draw(st.lists(st.integers(0, 2**16), min_size=1, max_size=3), label="arch seeds"):
        check_arch(enet, x, enet.space.sample(seed))


@examples("ci", scale=0.3)
@given(st.data(), searchified())
def test_elasticized_supernet_archs_materialise_to_it(data: st.DataObject, case: tuple) -> None:
    _searchified_elastic_property(data, case)


@pytest.mark.slow
@examples("slow", scale=0.5)
@given(st.data(), searchified())
def test_elasticized_supernet_archs_materialise_to_it_slow(data: st.DataObject, case: tuple) -> None:
    _searchified_elastic_property(data, case)

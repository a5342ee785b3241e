"""Hierarchical candidates (inner slots): construct lowers them, materialize resolves nested choices."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.fx as fx
from torch import nn

import fxnas
from fxnas.candidates.hierarchical import Branches, DagCell, InnerSlot
from fxnas.candidates.registry import build_candidate
from fxnas.errors import RegistryError
from fxnas.slot import SlotSpec

from .conftest import TwoConv

BR = "BRANCH(NC3|DW3+IDT|NIL)"
CELL = "CELL2(NIL|IDT|NC3)"




def supernet(cands, mixed_op: str = "Index", **kw):
    x = torch.randn(2, 4, 8, 8)
    return fxnas.searchify(TwoConv(4, 8, relu=True), "conv3x3", cands, x, mixed_op=mixed_op, **kw), x


def test_branch_candidate_structure() -> None:
    s = SlotSpec(4, 8, 2, 3, in_shape=(2, 4, 8, 8), out_shape=(2, 8, 4, 4), name="c1")
    m = build_candidate(BR, s)
    assert isinstance(m, Branches) and len(m.branches) == 2
    assert [b.choices for b in m.branches] == [["NC3", "DW3"], ["IDT", "NIL"]]
    assert all(isinstance(b, InnerSlot) and b.spec.stride == 2 for b in m.branches)
    assert tuple(m(torch.randn(2, 4, 8, 8)).shape) == (2, 8, 4, 4)  # unlowered: each runs its first choice
    with pytest.raises(RegistryError):
        build_candidate("BRANCH(NC3|NOPE)", s)


def test_cell_candidate_structure() -> None:
    s = SlotSpec(4, 8, 2, 3, in_shape=(2, 4, 8, 8), out_shape=(2, 8, 4, 4), name="c1")
    m = build_candidate("CELL3(NIL|IDT|NC3)", s)
    assert isinstance(m, DagCell) and len(m.edges) == 6
    strides = [e.spec.stride for e in m.edges]
    assert strides == [2, 2, 1, 2, 1, 1]  # edges from the input (0, 1, 3) carry the slot's stride
    assert [e.spec.in_channels for e in m.edges] == [4, 4, 8, 4, 8, 8]


def test_construct_lowers_inner_slots_with_prefixed_params() -> None:
    sn, x = supernet(["NC3", BR, CELL])
    names = set(sn.space.params)
    assert {"c1", "c2", f"c1.{BR}.branches.0", f"c1.{BR}.branches.1", f"c2.{CELL}.edges.2"} <= names
    assert len(names) == 2 + 2 * (2 + 3)
    assert sn.space[f"c1.{BR}.branches.1"].choices == ["IDT", "NIL"]
    assert not fxnas.slots(sn)  # every slot, inner ones included, is lowered
    assert len(fxnas.mixed_ops(sn)) == 2 + 2 * 5


def test_shared_outer_param_shares_inner_params() -> None:
    sn, x = supernet([BR, "NC3"], param_name=lambda spec: "blk")
    assert set(sn.space.params) == {"blk", f"blk.{BR}.branches.0", f"blk.{BR}.branches.1"}


def test_nested_arch_materializes_to_what_supernet_computes(rand_bn) -> None:
    sn, x = supernet(["NC3", BR, CELL])
    rand_bn(sn)
    sn.eval()
    space = sn.space
    seen_inner = 0
    inner1 = [f"c1.{BR}.branches.0", f"c1.{BR}.branches.1"]
    for outer, b0, b1 in itertools.product(["NC3", BR, CELL], ["NC3", "DW3"], ["IDT", "NIL"]):
        arch = space.sample(seen_inner)
        arch.update({"c1": outer, "c2": CELL, inner1[0]: b0, inner1[1]: b1})
        space.apply(arch)
        sub = fxnas.materialize(sn, arch).eval()
        assert not any(type(m).__module__.startswith("fxnas.") for m in sub.modules())
        torch.testing.assert_close(sub(x), sn(x))
        seen_inner += 1
    # the BRANCH(DW3 + NIL) subnet contains exactly one depthwise conv path for c1
    arch.update({"c1": BR, inner1[0]: "DW3", inner1[1]: "NIL"})
    sub = fxnas.materialize(sn, arch)
    c1_convs = [n for n, m in sub.named_modules() if n.startswith("c1") and isinstance(m, nn.Conv2d)]
    assert len(c1_convs) == 2  # DW3 = depthwise + pointwise; NIL adds none


@pytest.mark.parametrize("mixed_op", ["SoftmaxSum", "BinaryGate", "GumbelSum"])
def test_nested_with_gradient_mixed_ops(mixed_op: str) -> None:
    sn, x = supernet([BR, "NC3"], mixed_op=mixed_op)
    assert f"c1.{BR}.branches.0.alpha" in sn.space
    sn.train()
    sn(x).sum().backward()
    alpha = sn.space["c1.alpha"].value
    assert alpha.grad is not None
    arch = sn.space.derive()
    assert set(arch) == set(sn.space.discrete())
    sub = fxnas.materialize(sn, arch).eval()
    assert tuple(sub(x).shape) == (2, 8, 4, 4)
    assert isinstance(fx.symbolic_trace(sub), fx.GraphModule)


def test_self_nesting_candidate_is_stopped() -> None:
    """A candidate whose inner slot may choose the candidate itself: construct gives up with a ConfigError."""
    from fxnas.candidates.registry import CANDIDATES
    from fxnas.errors import ConfigError

    def loop(spec: SlotSpec) -> nn.Module:
        return Branches([InnerSlot(spec.with_(original=None, name=f"{spec.name}.b"), ["IDT", "LOOPTEST"])])

    CANDIDATES.register("LOOPTEST", loop)
    try:
        with pytest.raises(ConfigError, match="nested deeper"):
            supernet(["LOOPTEST"], check=False)
    finally:
        del CANDIDATES._items["LOOPTEST"]

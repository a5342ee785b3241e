"""Constructor passes: Slots → mixed ops over candidates with Categorical params; fixed networks from archs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import randomize_bn

import fxnas
from fxnas.errors import ConfigError, ShapeError
from fxnas.mixed import IndexMixedOp, SoftmaxSumMixedOp
from fxnas.modelfile import load_model
from fxnas.supernet import mixed_ops, slots

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")
X = torch.randn(2, 3, 16, 16)


def slotted(pattern="conv3x3"):
    m = randomize_bn(load_model(TINY)).eval()
    gm = fxnas.trace(m, X)
    fxnas.rewrite(gm, pattern)
    return m, gm


def test_construct_index_ops_and_events() -> None:
    m, gm = slotted()
    space = fxnas.construct(gm, ["ORIG", "NC5", "MB3E3"])
    ops = mixed_ops(gm)
    assert list(ops) == list(space) and not slots(gm)
    assert all(isinstance(op, IndexMixedOp) for op in ops.values())
    assert space.size() == 3 ** 6
    gm.eval()
    torch.testing.assert_close(gm(X), m(X))  # default value: the first candidate, ORIG
    space.apply({"res1.conv1": "NC5"})
    assert ops["res1.conv1"].chosen_name() == "NC5" and ops["res1.conv2"].chosen_name() == "ORIG"
    assert not torch.allclose(gm(X), m(X))
    assert ops["res1.conv1"].chosen().__class__.__name__ == "Sequential"


def test_per_slot_dict_and_callable_candidates() -> None:
    _, gm = slotted("conv3x3,linear")
    space = fxnas.construct(gm, lambda spec: ["ORIG", "IDT"] if spec.stride == 1 else ["ORIG"])
    assert space["res2.conv1"].choices == ["ORIG"] and space["head"].choices == ["ORIG", "IDT"]
    _, gm = slotted("linear")
    space = fxnas.construct(gm, {"head": ["ORIG", "NIL"]})
    assert space["head"].choices == ["ORIG", "NIL"]
    _, gm = slotted("linear")
    with pytest.raises(ConfigError, match="no candidates given for slot 'head'"):
        fxnas.construct(gm, {"other": ["ORIG"]})


def test_shape_check_names_the_slot() -> None:
    _, gm = slotted("linear")
    with pytest.raises(ShapeError, match="needs a 3-D NCL or 4-D NCHW or 5-D NCDHW slot, but slot 'head'"):
        fxnas.construct(gm, ["ORIG", "MB3E3"])
    _, gm = slotted()
    with pytest.raises(fxnas.RegistryError, match="unknown candidate 'MB3X3'"):
        fxnas.construct(gm, ["ORIG", "MB3X3"])


def test_shared_params_by_name() -> None:
    _, gm = slotted()
    space = fxnas.construct(gm, ["ORIG", "IDT"], param_name=lambda s: f"s{s.stride}")
    assert sorted(space) == ["s1", "s2"]
    space.apply({"s1": "IDT"})
    assert {op.chosen_name() for p, op in mixed_ops(gm).items() if p != "res2.conv1"} == {"IDT"}
    _, gm = slotted()
    with pytest.raises(ConfigError, match="declared twice with different domains"):
        fxnas.construct(gm, lambda s: ["ORIG", "IDT"] if s.stride == 1 else ["ORIG"], param_name=lambda s: "all")


def test_softmax_sum_is_the_weighted_sum() -> None:
    _, gm = slotted("dwconv")
    space = fxnas.construct(gm, ["ORIG", "DW3", "NIL"], mixed_op="SoftmaxSum")
    op = mixed_ops(gm)["dw.dw"]
    assert isinstance(op, SoftmaxSumMixedOp) and "dw.dw.alpha" in space.tensors()
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(2, 32, 8, 8)
    op.eval()
    w = F.softmax(torch.tensor([0.5, -1.0, 2.0]), 0)
    want = sum(w[i] * c(x) for i, c in enumerate(op.candidates.values()))
    torch.testing.assert_close(op(x), want)
    assert space.derive()["dw.dw"] == "NIL"


def test_construct_fixed() -> None:
    m, gm = slotted()
    arch = {p: "ORIG" for p in slots(gm)}
    arch["res2.conv2"] = "DW5"
    fxnas.construct_fixed(gm, arch)
    assert not slots(gm) and not mixed_ops(gm)
    assert gm.eval()(X).shape == (2, 10)
    _, gm = slotted()
    with pytest.raises(ConfigError, match="no op for slot"):
        fxnas.construct_fixed(gm, {"stem.0": "ORIG"})


def test_searchify_requires_inputs() -> None:
    with pytest.raises(ValueError, match="example_inputs"):
        fxnas.searchify(load_model(TINY))


def test_duplicate_candidates_and_bad_family_numbers_are_refused() -> None:
    _, gm = slotted()
    with pytest.raises(ConfigError, match="candidates list MB3E3 more than once"):
        fxnas.construct(gm, ["MB3E3", "ORIG", "MB3E3"])
    for bad, why in (("MB3E0", "expansion ratio 0"), ("NC0", "kernel size 0"), ("DW4", "kernel size 4")):
        with pytest.raises(fxnas.RegistryError, match=why):
            fxnas.construct(slotted()[1], ["ORIG", bad])


def test_each_distinct_candidate_is_shape_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from fxnas.passes import construct as construct_mod

    model = torch.nn.Sequential(*[torch.nn.Conv2d(8, 8, 3, padding=1) for _ in range(4)],
                                torch.nn.Conv2d(8, 8, 3, stride=2, padding=1))
    calls: list[str] = []
    real = construct_mod.check_shape
    monkeypatch.setattr(construct_mod, "check_shape", lambda n, m, s: (calls.append(s.name), real(n, m, s))[1])
    net = fxnas.searchify(model, "conv3x3", ["NC3", "NC5"], example_inputs=torch.randn(1, 8, 8, 8))
    # four identical stride-1 slots share their two checks; the stride-2 slot's candidates differ
    assert sorted(calls) == sorted(["0", "0", "4", "4"]) and len(mixed_ops(net)) == 5
    net.space.apply({k: "NC5" for k in net.space.discrete()})
    assert net(torch.randn(2, 8, 8, 8)).shape == (2, 8, 4, 4)

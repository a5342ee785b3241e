"""Cost rules: hand-counted ops of each kind, user rules in a registry, conflicting claims."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fxnas.errors import RegistryError
from fxnas.profilers.counter import count
from fxnas.profilers.rules import COST_RULES, CostRule, OpCall, OpCount, build_index
from fxnas.registry import Registry


def _rules(**extra: type) -> Registry:
    """The built-in rules plus ``extra`` in a registry of their own (the global one stays as it is)."""
    reg = Registry("cost rule")
    for name in COST_RULES:
        reg.register(name, COST_RULES.get(name))
    for name, rule in extra.items():
        reg.register(name, rule)
    return reg


class Scale(nn.Module):
    """A user module: traced through unless named a leaf."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w.view(1, -1, 1, 1)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.tconv = nn.ConvTranspose2d(4, 2, 2, stride=2)
        self.ln = nn.LayerNorm(16)
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)  # 4x8x8 out, 27 MACs each
        b = F.conv2d(x, self.w, padding=1)  # the same count through the functional form
        y = self.tconv(a + b)  # in 4x8x8 = 256 elements x cout 2 x k 4
        return self.ln(y)  # 2x16x16 elements, affine: 5 FLOPs each


def test_hand_counted_conv_forms_and_layer_norm() -> None:
    r = count(Net(), torch.randn(1, 3, 8, 8))
    conv = 4 * 8 * 8 * 27
    by = r.by_kind("macs")
    assert by["conv"] == 2 * conv + 256 * 2 * 4
    flops = r.by_kind("flops")
    assert flops["norm"] == 5 * 2 * 16 * 16
    assert flops["conv"] == 2 * by["conv"] + 2 * 16 * 16  # only the transposed conv has a bias
    assert r.uncounted() == []
    assert r.total()["params"] == sum(p.numel() for p in Net().parameters())


def test_attention_module_and_function() -> None:
    e, n, heads = 16, 5, 2
    mha = nn.MultiheadAttention(e, heads, batch_first=True)
    x = torch.randn(1, n, e)

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.mha(x, x, x, need_weights=False)[0]

    r = count(M(), x)
    proj = n * e * e * 4  # q, k, v in and the output projection
    scores = n * n * e * 2  # q k^T and the weighted sum of v
    assert r.by_kind("macs") == {"attention": proj + scores}
    q = torch.randn(1, heads, n, e // heads)
    r = count(nn.Sequential(), q)  # a graph without ops costs nothing
    assert r.total()["macs"] == 0

    class S(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, q, q)

    assert count(S(), q).by_kind("macs") == {"attention": heads * n * n * (e // heads) * 2}


def test_views_write_nothing_and_share_storage() -> None:
    class V(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x.view(1, -1)).flatten(1)

    r = count(V(), torch.randn(1, 4, 8))
    view, relu, flat = r.nodes
    assert view.alias and flat.alias and view.write_bytes == flat.write_bytes == 0 == view.read_bytes
    assert relu.read_bytes == relu.write_bytes == 32 * 4
    assert r.peak_activation_bytes == 32 * 4  # the relu output; the views share storage


def test_user_rule_for_a_leaf_module() -> None:
    class ScaleRule(CostRule):
        kind = "scale"
        modules = (Scale,)

        def count(self, call: OpCall) -> OpCount:
            return OpCount(0, call.out_numel)

    net = nn.Sequential(nn.Conv2d(3, 4, 1), Scale(4))
    x = torch.randn(1, 3, 2, 2)
    plain = count(net, x, leaf_modules=[Scale])  # a leaf no built-in rule claims
    assert plain.uncounted() == ["1"] and "scale" not in plain.by_kind("flops")
    assert plain.nodes[1].write_bytes == 16 * 4  # its memory is counted all the same
    got = count(net, x, rules=_rules(scale=ScaleRule), leaf_modules=[Scale])
    assert got.uncounted() == [] and got.by_kind("flops")["scale"] == 16
    traced = count(net, x)  # not a leaf: traced through, its multiply counted as elementwise
    assert traced.by_kind("flops")["elementwise"] == 16


def test_conflicting_claims_raise() -> None:
    class Mine(CostRule):
        functions = (F.conv2d,)

    with pytest.raises(RegistryError, match="both claim 'conv2d'"):
        build_index(_rules(mine=Mine))

    class Sub(nn.Conv2d):
        pass

    class SubRule(CostRule):
        kind = "subconv"
        modules = (Sub,)

    index = build_index(_rules(sub=SubRule))
    assert index.rule_for("call_module", "x", Sub(1, 1, 1)).kind == "subconv"  # the most derived type wins
    assert index.rule_for("call_module", "x", nn.Conv2d(1, 1, 1)).kind == "conv"

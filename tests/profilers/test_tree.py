"""Cost trees: exact per arch (= the materialised subnet counted), and the expectation, differentiable in alphas."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import fxnas
from fxnas.profilers.counter import ADDITIVE, count
from fxnas.profilers.tree import arch_weights, build_cost_tree, choice_options

BR = "BRANCH(NC3|DW3+IDT|NIL)"
C = 4


class Two(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(C, C, 3, padding=1)
        self.b = nn.Conv2d(C, C, 3, padding=1)
        self.head = nn.Linear(C, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(torch.relu(self.a(x)))
        return self.head(y.mean((2, 3)))


@pytest.fixture(scope="module")
def nested() -> nn.Module:
    torch.manual_seed(0)
    return fxnas.searchify(Two(), "conv3x3", {"a": [BR, "NC3", "DW3"], "b": ["NC3", "DW3", "NC5"]},
                           torch.randn(2, C, 6, 6), mixed_op="SoftmaxSum")


def _all_archs(space):
    names = list(space.discrete())
    for values in itertools.product(*(space[n].choices for n in names)):
        yield dict(zip(names, values))


def test_evaluate_equals_the_materialised_subnet_counted(nested) -> None:
    tree = build_cost_tree(nested)
    assert tree.nested and len(tree.terms) == 2 and len(tree.params()) == len(nested.space.discrete()) == 4
    x = torch.randn(1, C, 6, 6)
    archs = list(_all_archs(nested.space))
    for arch in archs[:: max(1, len(archs) // 12)]:
        want = count(fxnas.materialize(nested, arch), x).total()
        got = tree.evaluate(arch)
        assert {k: got[k] for k in ADDITIVE} == pytest.approx({k: float(want[k]) for k in ADDITIVE}), arch


def test_expectation_equals_the_enumerated_one_and_its_gradient(nested) -> None:
    tree = build_cost_tree(nested)
    torch.manual_seed(1)
    with torch.no_grad():
        for t in nested.space.tensors().values():
            t.value.normal_(0.0, 1.0)
    w = arch_weights(nested.space)
    brute = 0.0
    for arch in _all_archs(nested.space):
        p = 1.0
        for k, v in arch.items():
            p *= float(w[k][nested.space[k].choices.index(v)].detach())
        brute += p * tree.evaluate(arch)["macs"]
    e = tree.expected(w, "macs")
    assert float(e.detach()) == pytest.approx(brute, rel=1e-6)  # float32 softmax
    # the gradient of a non-nested term is the softmax Jacobian times the options' costs
    term = tree.terms[1]
    alpha = nested.space[f"{term.param}.alpha"].value
    (g,) = torch.autograd.grad(e, [alpha])
    p = torch.softmax(alpha.detach().double(), -1)
    vals = torch.stack([o.expected({k: v.detach() for k, v in w.items()}, "macs") for o in term.options.values()])
    assert torch.allclose(g.double(), p * (vals - p @ vals), rtol=1e-4)


def test_one_hot_alphas_give_the_arch_and_params_without_alphas_follow_their_value(nested) -> None:
    tree = build_cost_tree(nested)
    arch = nested.space.sample(3)
    with torch.no_grad():
        for name, choice in arch.items():
            a = nested.space[f"{name}.alpha"].value
            a.fill_(-40.0)
            a[nested.space[name].choices.index(choice)] = 40.0
    got = float(tree.expected(arch_weights(nested.space), "params").detach())
    assert got == pytest.approx(tree.evaluate(arch)["params"])
    net = fxnas.searchify(Two(), "conv3x3", ["NC3", "NC5"], torch.randn(1, C, 6, 6))  # Index: no alphas
    net.space.apply({"a": "NC5", "b": "NC3"})
    t = build_cost_tree(net)
    w = arch_weights(net.space)
    assert not any(v.requires_grad for v in w.values())
    assert float(t.expected(w, "macs")) == t.evaluate({"a": "NC5", "b": "NC3"})["macs"]
    assert t.span("macs") == sum(max(o.fixed["macs"] for o in term.options.values()) for term in t.terms)


def test_choice_options_restore_the_value(nested) -> None:
    op = nested.get_submodule("a")
    nested.space.apply({"a": "DW3"})
    opts = choice_options(op, nested.space)
    assert list(opts) == nested.space["a"].choices and opts["NC3"] is op.candidates["NC3"]
    assert nested.space["a"].value == "DW3" and op.chosen_name() == "DW3"

"""The DARTS cell space: built from an ordinary network by fxnas passes, shared cell params, genotypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fxnas
from fxnas.optim.gradient import DARTS
from fxnas.spaces.darts import (
    DARTS_CANDIDATES,
    DartsNetwork,
    Edge,
    darts_derive,
    darts_supernet,
    genotype,
    num_edges,
    reduction_layers,
)

KW = dict(C=4, layers=3, num_classes=5, input_shape=(2, 3, 8, 8))


@pytest.fixture(scope="module")
def softmax_net():
    torch.manual_seed(0)
    return darts_supernet(**KW, mixed_op="SoftmaxSum")


@pytest.fixture(scope="module")
def index_net():
    torch.manual_seed(0)
    return darts_supernet(**KW, mixed_op="Index")


def test_plain_network_is_ordinary() -> None:
    net = DartsNetwork(C=4, num_classes=5, layers=3)
    assert reduction_layers(8) == {2, 5} and reduction_layers(3) == {1, 2}
    assert sum(isinstance(m, Edge) for m in net.modules()) == 3 * 14 == 3 * num_edges(4)
    y = net(torch.randn(2, 3, 8, 8))
    assert y.shape == (2, 5)
    y.sum().backward()  # trainable as is


def test_params_shared_per_cell_kind(softmax_net) -> None:
    space = softmax_net.space
    assert len(space.discrete()) == 28 and len(space.tensors()) == 28
    assert set(space.discrete()) == {f"{k}.e{i}" for k in ("normal", "reduce") for i in range(14)}
    assert all(p.choices == DARTS_CANDIDATES for p in space.discrete().values())
    ops = fxnas.mixed_ops(softmax_net)
    assert len(ops) == 3 * 14
    # cell 0 is normal, cells 1 and 2 are reductions: they share one alpha per edge
    assert ops["cells.1.edges.5"].alpha is ops["cells.2.edges.5"].alpha is space["reduce.e5.alpha"].value
    assert ops["cells.0.edges.5"].param.name == "normal.e5"
    # reduction edges from the two inputs are strided, the others not
    assert ops["cells.1.edges.0"].candidates["SEP3"][1].stride == (2, 2)
    assert ops["cells.1.edges.4"].candidates["SEP3"][1].stride == (1, 1)  # node 1 from node 0


def test_supernet_trains_alphas(softmax_net) -> None:
    softmax_net.train()
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 3])
    loss = F.cross_entropy(softmax_net(x), y)
    grads = torch.autograd.grad(loss, softmax_net.space.arch_parameters())
    assert all(g.abs().sum() > 0 for g in grads)


def test_derive_keeps_two_edges_per_node_and_materializes(softmax_net) -> None:
    space = softmax_net.space
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in space.arch_parameters():
            t.copy_(torch.randn(t.shape, generator=g))
        space["normal.e0.alpha"].value.copy_(torch.tensor([9.0, 0, 0, 0, 5, 0, 0, 0]))  # NIL strongest: ignored
        space["normal.e1.alpha"].value.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 0, 9.0]))
    arch = darts_derive(space)
    assert arch["normal.e0"] == "SEP3" and arch["normal.e1"] == "DIL5"
    assert DARTS(space, derive="darts_cell").best() == arch  # what the SuperNet estimator evaluates
    offset = 0
    for i in range(4):
        for kind in ("normal", "reduce"):
            kept = [arch[f"{kind}.e{offset + j}"] for j in range(2 + i)]
            assert sum(op != "NIL" for op in kept) == 2
        offset += 2 + i
    geno = genotype(arch)
    assert len(geno.normal) == 8 and len(geno.reduce) == 8 and geno.normal_concat == [2, 3, 4, 5]
    assert geno.normal[:2] == [("sep_conv_3x3", 0), ("dil_conv_5x5", 1)]
    sub = fxnas.materialize(softmax_net, arch).eval()
    assert not any(type(m).__module__.startswith("fxnas.") for m in sub.modules())
    assert sub(torch.randn(2, 3, 8, 8)).shape == (2, 5)


def test_materialized_equals_supernet_with_index(index_net, rand_bn) -> None:
    rand_bn(index_net)
    index_net.eval()
    x = torch.randn(2, 3, 8, 8)
    for seed in range(2):
        arch = index_net.space.sample(seed)
        index_net.space.apply(arch)
        sub = fxnas.materialize(index_net, arch).eval()
        torch.testing.assert_close(sub(x), index_net(x), rtol=1e-4, atol=1e-5)


def test_orig_candidates_give_the_plain_network(rand_bn) -> None:
    torch.manual_seed(0)
    net = rand_bn(DartsNetwork(C=4, num_classes=5, layers=3)).eval()
    sn = fxnas.searchify(net, pattern=Edge, candidates=["ORIG"], example_inputs=torch.randn(1, 3, 8, 8))
    sub = fxnas.materialize(sn).eval()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(sub(x), net(x))

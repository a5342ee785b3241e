"""Objectives, constraints, Pareto helpers, and params/FLOPs counted from a supernet's graph."""

from __future__ import annotations

import json
import random

import pytest
import torch
from torch import nn

from fxnas import materialize
from fxnas.errors import ConfigError
from fxnas.objectives import (
    Constraint,
    GraphCost,
    Objective,
    crowding_distance,
    dominates,
    non_dominated_sort,
    pareto_front,
    parse_constraint,
    parse_objective,
    plot_pareto,
    scalar_score,
    write_pareto,
)
from fxnas.optim import Result
from fxnas.spaces.nb201 import EDGE_PARAMS, NB201Net, nb201_space, nb201_supernet


def test_parse_objective_and_constraint():
    assert parse_objective("acc") == Objective("acc", "max")
    assert parse_objective("min:params") == Objective("params", "min")
    assert parse_objective({"metric": "lat", "mode": "min"}) == Objective("lat", "min")
    assert parse_objective(None).metric is None
    assert parse_constraint("params <= 1.5e6") == Constraint("params", "<=", 1.5e6)
    assert parse_constraint({"metric": "flops", "op": "<", "bound": 3}) == Constraint("flops", "<", 3.0)
    with pytest.raises(ConfigError, match="max|min"):
        parse_objective("best:acc")
    with pytest.raises(ConfigError, match="params <= 1e6"):
        parse_constraint("params == 3")
    with pytest.raises(ConfigError, match="mode"):
        Objective("acc", "up")


def test_scalar_score_orders_feasible_above_infeasible():
    obj, cons = Objective("acc"), [parse_constraint("params <= 10")]
    ok, small_miss, big_miss = {"acc": 1.0, "params": 5}, {"acc": 9.0, "params": 11}, {"acc": 9.0, "params": 50}
    assert scalar_score(ok, obj, cons) > scalar_score(small_miss, obj, cons) > scalar_score(big_miss, obj, cons)
    assert scalar_score({"acc": 2.0}, Objective("acc", "min")) == -2.0
    assert scalar_score({"a": 3.0, "b": 1.0}, Objective()) == 3.0  # no metric: the first one
    with pytest.raises(ConfigError, match="params"):
        scalar_score({"acc": 1.0}, obj, cons)


def test_non_dominated_sort_matches_brute_force():
    rng = random.Random(0)
    pts = [[rng.randint(0, 5), rng.randint(0, 5)] for _ in range(40)]
    fronts = non_dominated_sort(pts)
    assert sorted(i for f in fronts for i in f) == list(range(40))
    rank = {i: k for k, f in enumerate(fronts) for i in f}
    for i in range(40):
        for j in range(40):
            if dominates(pts[i], pts[j]):
                assert rank[i] < rank[j]
    first = [i for i in range(40) if not any(dominates(pts[j], pts[i]) for j in range(40))]
    assert sorted(fronts[0]) == first


def test_constraint_violation_ranks_in_sort():
    fronts = non_dominated_sort([[1.0], [5.0], [9.0]], violations=[0.0, 0.5, 0.1])
    assert fronts == [[0], [2], [1]]


def test_crowding_distance():
    pts = [[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]]
    d = crowding_distance(pts, [0, 1, 2, 3])
    assert d[0] == d[3] == float("inf")
    assert d[1] == pytest.approx(3 / 4 + 3 / 4) and d[2] == pytest.approx(3 / 4 + 3 / 4)


def test_pareto_front_write_and_plot(tmp_path):
    rs = [Result({"a": i}, {"acc": a, "params": p}) for i, (a, p) in enumerate([(1, 1), (2, 2), (1, 3), (3, 3)])]
    front = pareto_front(rs, ["acc", "min:params"])
    assert [r.arch["a"] for r in front] == [0, 1, 3]
    assert [r.arch["a"] for r in pareto_front(rs, ["acc", "min:params"], ["params <= 2"])] == [0, 1]
    path = write_pareto(tmp_path, front, ["acc", "min:params"], rs)
    assert json.loads(path.read_text())["objectives"] == [{"metric": "acc", "mode": "max"},
                                                          {"metric": "params", "mode": "min"}]
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="two objectives"):
        plot_pareto(tmp_path / "x.png", front, ["acc"])


@pytest.fixture(scope="module")
def supernet():
    return nb201_supernet(check=False)


def _macs_by_hooks(net: nn.Module, x: torch.Tensor) -> int:
    total = [0]

    def hook(m, args, out):
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups if isinstance(m, nn.Conv2d) \
            else m.in_features
        total[0] += out[0].numel() * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net.eval()(x)
    for h in hs:
        h.remove()
    return total[0]


def test_graph_cost_equals_materialised_subnet(supernet):
    cost = GraphCost(supernet)
    x = torch.randn(1, 3, 32, 32)
    rng = random.Random(0)
    for arch in [nb201_space().sample(rng) for _ in range(3)] + [{k: "NIL" for k in EDGE_PARAMS}]:
        sub = materialize(supernet, arch)
        got = cost(arch)
        assert got["params"] == sum(p.numel() for p in sub.parameters())
        assert got["flops"] == _macs_by_hooks(sub, x)


def test_graph_cost_of_plain_model_and_known_values(supernet):
    c = GraphCost(supernet)({k: "RCB3" for k in EDGE_PARAMS})
    assert c["params"] == sum(p.numel() for p in NB201Net().parameters())  # the plain model is all-conv3x3
    assert c["params"] / 1e6 == pytest.approx(1.5315, abs=1e-4)  # NB201's largest cell: 1.53 M params
    assert c["flops"] / 1e6 == pytest.approx(220.1, abs=0.1)


BR = "BRANCH(NC3|DW3+IDT|NIL)"


@pytest.fixture(scope="module")
def nested():
    from fxnas import searchify
    from fxnas.examples.tiny_net import build

    return searchify(build(), "conv3x3", [BR, "NC3"], torch.randn(2, 3, 32, 32), mixed_op="Index", check=False)


def test_graph_cost_of_nested_candidates_equals_materialised_subnet(nested):
    from fxnas.profilers.static import profile

    cost = GraphCost(nested)
    inner = [k for k in nested.space.params if ".BRANCH(" in k]
    assert cost.nested and inner and [p for p, _ in cost.table] == [k for k in nested.space.params if k not in inner]
    x = torch.randn(1, 3, 32, 32)
    archs = [nested.space.sample(s) for s in range(3)]
    archs.append({**{k: BR for k in cost.space.params if k not in inner}, **{k: "NIL" for k in inner[1::2]}})
    archs.append({k: "NC3" for k in cost.space.params if k not in inner})  # inner params keep their values
    for arch in archs:
        sub = materialize(nested, {**nested.space.current(), **arch})
        got, want = cost(arch), profile(sub, x)
        assert got["params"] == sum(p.numel() for p in sub.parameters()) == want["params"]
        assert got["flops"] == want["macs"] == _macs_by_hooks(sub, x)
    br = {k: BR for k in cost.space.params if k not in inner}  # the inner choices now change the cost
    assert cost({**br, **{k: "DW3" for k in inner[::2]}})["params"] < cost({**br, **{k: "NC3" for k in inner[::2]}})[
        "params"]


def test_graph_cost_pickles_without_the_supernet(supernet):
    import pickle

    cost = GraphCost(supernet)
    blob = pickle.dumps(cost)
    assert len(blob) < 100_000  # the mixed ops' handlers (the whole supernet) stay behind
    arch = nb201_space().sample(3)
    assert pickle.loads(blob)(arch) == cost(arch)


def test_plot_pareto_leaves_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    import sys

    import matplotlib

    before = matplotlib.get_backend()
    calls = []
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: calls.append(a))
    rs = [Result({"a": i}, {"acc": float(i), "params": float(i * i)}) for i in range(4)]
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plot_pareto(tmp_path / "p.png", rs, ["acc", "min:params"], rs)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert calls == [] and matplotlib.get_backend() == before
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules  # no pyplot figure manager involved

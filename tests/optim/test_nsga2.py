"""NSGA2: Pareto fronts over NB201 accuracy (table) and params (counted from the graph); determinism, resume."""

from __future__ import annotations

import json

import pytest

from fxnas.errors import ConfigError
from fxnas.estim.table import Table
from fxnas.objectives import dominates, parse_objective
from fxnas.optim import OPTIMIZERS, arch_key
from fxnas.optim.nsga2 import NSGA2
from fxnas.spaces.nb201 import nb201_space

from .conftest import assert_deterministic_and_resumable, run_loop, toy_score, toy_space

OBJS = ["max:cifar10_valid_12ep", "min:params"]


@pytest.fixture(scope="module")
def table() -> Table:
    return Table(budget=200, costs=["params"])


def values(r, objs=OBJS):
    return [parse_objective(o).value(r.metrics) for o in objs]


def test_registered():
    assert OPTIMIZERS.get("NSGA2") is NSGA2


def test_needs_objectives():
    with pytest.raises(ConfigError, match="objectives"):
        NSGA2(toy_space())


@pytest.mark.nb201
def test_pareto_front_on_nb201(table, tmp_path):
    opt = NSGA2(nb201_space(), seed=0, objectives=OBJS, population=20)
    results = table.search(opt, 200)
    assert len({arch_key(r.arch) for r in results}) == 200
    front = opt.pareto_front()
    assert len(front) >= 3
    for a in front:  # mutually non-dominated
        assert not any(dominates(values(b), values(a)) for b in front)
    for r in results:  # every evaluated arch is dominated by, or equal to, a front member
        assert any(dominates(values(f), values(r)) or values(f) == values(r) for f in front)
    # params grow with what the arch computes: the all-none cell is the cheapest arch there is
    assert min(r.metrics["params"] for r in front) <= min(r.metrics["params"] for r in results)
    from fxnas.objectives import write_pareto

    path = write_pareto(tmp_path, front, OBJS, results)
    data = json.loads(path.read_text())
    assert len(data["front"]) == len(front) and (tmp_path / "pareto.png").stat().st_size > 1000


@pytest.mark.nb201
def test_nsga2_front_better_than_random_front(table):
    from fxnas.objectives import pareto_front
    from fxnas.optim.discrete import Random

    def hypervolume(front):  # 2-D, reference point (accuracy 80, params 1.6M)
        pts = sorted((r.metrics["params"], r.metrics["cifar10_valid_12ep"]) for r in front)
        hv, best = 0.0, 80.0
        for i, (p, a) in enumerate(pts):
            nxt = pts[i + 1][0] if i + 1 < len(pts) else 1.6e6
            best = max(best, a)
            hv += (nxt - p) * (best - 80.0)
        return hv

    ns = table.search(NSGA2(nb201_space(), seed=1, objectives=OBJS, population=20), 200)
    rs = table.search(Random(nb201_space(), seed=1), 200)
    assert hypervolume(pareto_front(ns, OBJS)) > hypervolume(pareto_front(rs, OBJS))


def test_constraint_dominance_keeps_front_feasible():
    opt = NSGA2(toy_space(), seed=0, objectives=["max:acc", "min:cost"], constraints=["cost <= 2"], population=8)
    run_loop(opt, toy_score, 40)
    front = opt.pareto_front()
    assert front and all(r.metrics["cost"] <= 2 for r in front)


def test_deterministic_and_resumable():
    assert_deterministic_and_resumable(
        lambda s: NSGA2(toy_space(), seed=s, objectives=["max:acc", "min:cost"], population=6), toy_score, 30, 2)

"""Random and Grid: valid, non-repeating, exhaustive, deterministic and resumable proposals."""

from __future__ import annotations

import itertools
import statistics

import pytest

from fxnas.errors import ConfigError
from fxnas.estim.table import Table
from fxnas.optim import OPTIMIZERS, Result, arch_key
from fxnas.optim.discrete import Grid, Random
from fxnas.space import Categorical, Numerical, SearchSpace
from fxnas.spaces.nb201 import nb201_space

from .conftest import assert_deterministic_and_resumable, run_loop, toy_score, toy_space


def small_space() -> SearchSpace:
    s = SearchSpace()
    s.add(Categorical("a", ["x", "y", "z"]))
    s.add(Numerical("k", 1, 4, integer=True))
    return s


def test_registered():
    assert OPTIMIZERS.get("Random") is Random and OPTIMIZERS.get("Grid") is Grid


def test_random_valid_batches_without_repeats(space):
    opt = Random(space, seed=0)
    archs = run_loop(opt, toy_score, 20, batch=5)
    assert len(archs) == 100
    assert len({arch_key(a) for a in archs}) == 100
    for a in archs:
        assert space.validate(a, complete=True) == a
        assert isinstance(a["n"], int) and 0.0 <= a["x"] <= 1.0


def test_random_exhausts_small_space_then_stops():
    opt = Random(small_space(), seed=3)
    archs = opt.next(100)
    assert len(archs) == 12 and len({arch_key(a) for a in archs}) == 12
    assert opt.next(1) == []


def test_random_allow_repeat_repeats():
    opt = Random(small_space(), seed=0, allow_repeat=True)
    archs = opt.next(50)
    assert len(archs) == 50 and len({arch_key(a) for a in archs}) <= 12


def test_random_deterministic_and_resumable():
    assert_deterministic_and_resumable(lambda s: Random(toy_space(), seed=s), toy_score)


def test_grid_enumerates_in_row_major_order():
    opt = Grid(small_space())
    archs = opt.next(5) + opt.next(100)
    want = [{"a": a, "k": k} for a, k in itertools.product(["x", "y", "z"], [1, 2, 3, 4])]
    assert archs == want
    assert opt.next(3) == []


def test_grid_float_points_and_skip_evaluated():
    s = SearchSpace()
    s.add(Numerical("x", 0.0, 1.0))
    opt = Grid(s, grid_points=5)
    opt.step([Result({"x": 0.5}, {"acc": 1.0})])  # evaluated elsewhere: not proposed again
    assert [a["x"] for a in opt.next(10)] == pytest.approx([0.0, 0.25, 0.75, 1.0])


def test_grid_allow_repeat_cycles():
    opt = Grid(small_space(), allow_repeat=True)
    archs = opt.next(30)
    assert archs[12:24] == archs[:12]


def test_grid_resumable():
    a, b = Grid(toy_space(), grid_points=3), Grid(toy_space(), grid_points=3)
    full = run_loop(a, toy_score, 20, 3)
    head = run_loop(b, toy_score, 7, 3)
    c = Grid(toy_space(), grid_points=3)
    c.load_state_dict(b.state_dict())
    assert head + run_loop(c, toy_score, 13, 3) == full


def test_unknown_option_and_bad_metric():
    with pytest.raises(ConfigError, match="unknown options"):
        Random(toy_space(), population=3)
    opt = Random(toy_space(), metric="nope")
    opt.step([Result(opt.next()[0], {"acc": 1.0})])
    with pytest.raises(ConfigError, match="nope"):
        opt.best()


def test_best_respects_mode_and_constraints(space):
    opt = Random(space, metric="acc", constraints=["cost <= 2"])
    run_loop(opt, toy_score, 40)
    best = toy_score(opt.best())
    feasible = [toy_score(r.arch) for r in opt.history if toy_score(r.arch)["cost"] <= 2]
    assert best["cost"] <= 2 and best["acc"] == max(m["acc"] for m in feasible)
    low = Random(toy_space(), metric="acc", mode="min")
    run_loop(low, toy_score, 40)
    assert toy_score(low.best())["acc"] == min(r.metrics["acc"] for r in low.history)


@pytest.mark.nb201
def test_random_and_grid_on_nb201():
    table = Table(budget=100)
    accs = []
    for seed in range(20):
        res = table.search(Random(nb201_space(), seed=seed, metric="cifar10_valid_12ep"), 100)
        assert len({arch_key(r.arch) for r in res}) == 100
        accs.append(max(res, key=lambda r: r.metrics["cifar10_valid_12ep"]).metrics["cifar10_test_200ep"])
    assert 93.0 < statistics.fmean(accs) < 94.37
    grid = table.search(Grid(nb201_space()), 30)
    assert [r.arch["edge5"] for r in grid[:5]] == ["NIL", "IDT", "RCB1", "RCB3", "AVG3P"]

"""Evolution and RegularizedEvolution: selection, mutation, aging, determinism, resume, and NB201 search."""

from __future__ import annotations

import statistics

import pytest

from fxnas.errors import ConfigError
from fxnas.estim.table import Table
from fxnas.optim import OPTIMIZERS, Result, arch_key
from fxnas.optim.discrete import Random
from fxnas.optim.evolution import Evolution, RegularizedEvolution
from fxnas.spaces.nb201 import nb201_space

from .conftest import assert_deterministic_and_resumable, run_loop, toy_score, toy_space


def diff(a: dict, b: dict) -> int:
    return sum(a[k] != b[k] for k in a)


def test_registered():
    assert OPTIMIZERS.get("Evolution") is Evolution
    assert OPTIMIZERS.get("RegularizedEvolution") is RegularizedEvolution


def test_rea_children_mutate_one_param_of_a_population_member(space):
    opt = RegularizedEvolution(space, seed=0, population=6, sample=3)
    for step in range(40):
        before = [r.arch for r in opt.population]
        (arch,) = opt.next()
        if step >= 6:  # after the random initial population, every child is one mutation from a member
            assert any(diff(arch, p) == 1 for p in before)
        opt.step([Result(arch, toy_score(arch))])
        assert len(opt.population) == min(step + 1, 6)
        assert [r.arch for r in opt.population] == [r.arch for r in opt.history[-6:]]  # aging: oldest leave


def test_rea_parent_is_best_of_sample():
    # population of 2 and sample 2: the parent is always the better member, so children are its neighbours
    opt = RegularizedEvolution(toy_space(), seed=1, population=2, sample=2)
    run_loop(opt, toy_score, 2)
    for _ in range(10):
        best = max(opt.population, key=lambda r: r.metrics["acc"]).arch
        (child,) = opt.next()
        assert diff(child, best) == 1
        opt.step([Result(child, toy_score(child))])


def test_evolution_keeps_best_population_and_improves(space):
    opt = Evolution(space, seed=0, population=8, tournament=3)
    run_loop(opt, toy_score, 60)
    hist = sorted((r.metrics["acc"] for r in opt.history), reverse=True)
    assert sorted((r.metrics["acc"] for r in opt.population), reverse=True) == hist[:8]
    rnd = Random(toy_space(), seed=0)
    run_loop(rnd, toy_score, 60)
    assert toy_score(opt.best())["acc"] > toy_score(rnd.best())["acc"]


def test_no_repeats_and_batches(space):
    for cls in (Evolution, RegularizedEvolution):
        archs = run_loop(cls(toy_space(), seed=0, population=5), toy_score, 15, batch=4)
        assert len(archs) == 60 and len({arch_key(a) for a in archs}) == 60


@pytest.mark.parametrize("cls", [Evolution, RegularizedEvolution])
def test_deterministic_and_resumable(cls):
    assert_deterministic_and_resumable(lambda s: cls(toy_space(), seed=s, population=5), toy_score, rounds=30)


def test_bad_options():
    with pytest.raises(ConfigError, match="population"):
        RegularizedEvolution(toy_space(), population=0)
    with pytest.raises(ConfigError, match="crossover_prob"):
        Evolution(toy_space(), crossover_prob=2.0)


@pytest.mark.nb201
def test_rea_beats_random_on_nb201():
    table = Table(budget=100)

    def found(opt):
        res = table.search(opt, 100)
        return max(res, key=lambda r: r.metrics["cifar10_valid_12ep"]).metrics["cifar10_test_200ep"]

    seeds = range(40)
    rs = [found(Random(nb201_space(), seed=s)) for s in seeds]
    rea = [found(RegularizedEvolution(nb201_space(), seed=s, population=10, sample=3)) for s in seeds]
    ga = [found(Evolution(nb201_space(), seed=s, population=10)) for s in seeds]
    assert statistics.fmean(rea) > statistics.fmean(rs)
    assert statistics.fmean(ga) > statistics.fmean(rs)

"""ModelBased (SMBO): encoding, surrogate fit, acquisitions, epsilon-greedy, determinism, resume, NB201."""

from __future__ import annotations

import numpy as np
import pytest

from fxnas.errors import ConfigError
from fxnas.estim.table import Table
from fxnas.optim import OPTIMIZERS, Result, arch_key
from fxnas.optim.discrete import Random
from fxnas.optim.smbo import ModelBased, encode
from fxnas.spaces.nb201 import nb201_space

from .conftest import assert_deterministic_and_resumable, run_loop, toy_score, toy_space

FAST = {"xgb_params": {"n_estimators": 30}, "anneal_steps": 20, "chains": 4, "n_candidates": 200}


def test_registered():
    assert OPTIMIZERS.get("ModelBased") is ModelBased


def test_encode_one_hot_and_scaled(space):
    arch = {"c0": "b", "c1": "a", "c2": "d", "c3": "c", "n": 7, "x": 0.25}
    x = encode(space.discrete(), [arch])
    assert x.shape == (1, 18)
    np.testing.assert_allclose(x[0, :16].reshape(4, 4).argmax(1), [1, 0, 3, 2])
    assert x[0, :16].sum() == 4 and x[0, 16] == 1.0 and x[0, 17] == pytest.approx(0.25)


def test_initial_design_is_random_then_model_guided(space):
    opt = ModelBased(space, seed=0, init_random=8, epsilon=0.0, **FAST)
    run_loop(opt, toy_score, 8)
    assert opt._model is None  # no surrogate during the initial design
    run_loop(opt, toy_score, 12)
    assert opt._fitted_on == 19
    pred = opt.predict([r.arch for r in opt.history])
    acc = np.array([r.metrics["acc"] for r in opt.history])
    assert np.corrcoef(pred, acc)[0, 1] > 0.8  # the surrogate fits what it saw


@pytest.mark.parametrize("objective", ["regression", "ranking"])
@pytest.mark.parametrize("acquisition", ["annealing", "random"])
def test_beats_random_on_toy(objective, acquisition):
    def best_of(opt):
        run_loop(opt, toy_score, 30)
        return toy_score(opt.best())["acc"]

    smbo = [best_of(ModelBased(toy_space(), seed=s, objective=objective, acquisition=acquisition, **FAST))
            for s in range(3)]
    rnd = [best_of(Random(toy_space(), seed=s)) for s in range(3)]
    assert np.mean(smbo) > np.mean(rnd)


def test_epsilon_one_is_random_search(space):
    archs = run_loop(ModelBased(space, seed=0, epsilon=1.0, init_random=2, **FAST), toy_score, 15)
    assert len({arch_key(a) for a in archs}) == 15


def test_batches_without_repeats(space):
    archs = run_loop(ModelBased(space, seed=0, init_random=5, **FAST), toy_score, 6, batch=5)
    assert len(archs) == 30 and len({arch_key(a) for a in archs}) == 30


def test_deterministic_and_resumable():
    assert_deterministic_and_resumable(lambda s: ModelBased(toy_space(), seed=s, init_random=5, **FAST),
                                       toy_score, rounds=14, batch=2)


def test_bad_options(space):
    with pytest.raises(ConfigError, match="objective"):
        ModelBased(space, objective="nope")
    with pytest.raises(ConfigError, match="acquisition"):
        ModelBased(space, acquisition="nope")


def test_constraints_do_not_break_regression_targets(space):
    opt = ModelBased(space, seed=0, init_random=5, metric="acc", constraints=["cost <= 2"], **FAST)
    run_loop(opt, toy_score, 15)
    assert np.isfinite(opt.predict([r.arch for r in opt.history])).all()
    assert toy_score(opt.best())["cost"] <= 2
    none_ok = ModelBased(toy_space(), seed=0, init_random=5, metric="acc", constraints=["cost <= -1"], **FAST)
    run_loop(none_ok, toy_score, 8)  # nothing feasible: the surrogate learns the violation instead
    pred = none_ok.predict([r.arch for r in none_ok.history])
    cost = np.array([r.metrics["cost"] for r in none_ok.history])
    assert np.isfinite(pred).all() and np.corrcoef(pred, -cost)[0, 1] > 0.8


@pytest.mark.nb201
def test_runs_on_nb201():
    table = Table(budget=40)
    res = table.search(ModelBased(nb201_space(), seed=0, metric="cifar10_valid_12ep", **FAST), 40)
    assert len({arch_key(r.arch) for r in res}) == 40
    vals = [r.metrics["cifar10_valid_12ep"] for r in res]
    assert max(vals[10:]) >= max(vals[:10])  # guided proposals do not lose to the initial design
    assert all(isinstance(r, Result) for r in res)

"""TreeEnsemble (numpy evaluation of a fitted XGBoost ensemble) and ModelBased's refit schedule."""

from __future__ import annotations

import numpy as np
import pytest

from fxnas.errors import ConfigError
from fxnas.optim.smbo import ModelBased
from fxnas.optim.surrogate import TreeEnsemble
from fxnas.space import Categorical, Numerical, SearchSpace

xgb = pytest.importorskip("xgboost")


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    onehot = np.eye(5, dtype=np.float32)[rng.integers(0, 5, (n, 4))].reshape(n, 20)
    x = np.concatenate([onehot, rng.random((n, 2), dtype=np.float32)], axis=1)  # one-hot and continuous columns
    return x, (x[:, 0] * 2 - x[:, 7] + np.sin(6 * x[:, -1]) + 0.1 * rng.normal(size=n)).astype(np.float64)


@pytest.mark.parametrize("kind", ["regression", "ranking"])
def test_tree_ensemble_matches_xgboost(kind: str) -> None:
    x, y = _data(120, 0)
    params = {"n_estimators": 60, "max_depth": 5, "learning_rate": 0.1, "n_jobs": 1, "random_state": 0}
    if kind == "ranking":
        model = xgb.XGBRanker(objective="rank:pairwise", **params)
        model.fit(x, np.argsort(np.argsort(y)).astype(np.float64), qid=np.zeros(len(y), dtype=np.int64))
    else:
        model = xgb.XGBRegressor(objective="reg:squarederror", **params).fit(x, y)
    test, _ = _data(300, 1)
    got, want = TreeEnsemble(model.get_booster()).predict(test), model.predict(test)
    assert got.shape == (300,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.std(got) > 0.1  # the trees split: a constant prediction would not test the traversal


def test_tree_ensemble_refuses_a_non_identity_link() -> None:
    x, y = _data(50, 0)
    model = xgb.XGBClassifier(n_estimators=3, n_jobs=1).fit(x, (y > np.median(y)).astype(int))
    with pytest.raises(ConfigError, match="identity-link"):
        TreeEnsemble(model.get_booster())


def _space() -> SearchSpace:
    space = SearchSpace()
    space.add(Categorical("a", ["x", "y", "z"]))
    space.add(Numerical("b", 0.0, 1.0))
    return space


def test_refit_schedule() -> None:
    opt = ModelBased(_space(), refit_growth=0.2)
    points = sorted({opt.fit_size(n) for n in range(1, 101)})
    assert points[9:] == [10, 12, 14, 16, 19, 22, 26, 31, 37, 44, 52, 62, 74, 88]
    every = ModelBased(_space(), refit_growth=0.0)
    assert [every.fit_size(n) for n in range(0, 6)] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="refit_growth"):
        ModelBased(_space(), refit_growth=-0.5)

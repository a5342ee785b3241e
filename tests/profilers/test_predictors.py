"""Latency predictors on synthetic latencies (no timing): the table's fitted overhead, XGBoost, quality figures."""

from __future__ import annotations

import random

import pytest

from fxnas.errors import ConfigError
from fxnas.profilers.predictors import (
    TablePredictor,
    XGBoostPredictor,
    cross_validate,
    prediction_quality,
)
from fxnas.profilers.tree import ChoiceTerm, CostTree
from fxnas.space import Categorical, SearchSpace

CHOICES = ["a", "b", "c", "d"]


def _space_and_tree(n: int = 8) -> tuple[SearchSpace, CostTree, dict[str, dict[str, float]]]:
    rng = random.Random(0)
    space = SearchSpace()
    costs = {}
    terms = []
    for i in range(n):
        name = f"p{i}"
        space.add(Categorical(name, CHOICES))
        costs[name] = {c: rng.uniform(0.1, 2.0) for c in CHOICES}
        terms.append(ChoiceTerm(name, name, {c: CostTree({"latency_ms": v}) for c, v in costs[name].items()}))
    return space, CostTree({"latency_ms": 1.0}, terms), costs


def _true(arch, costs, scale=1.0, overhead=0.5) -> float:
    return scale * (1.0 + sum(costs[k][v] for k, v in arch.items())) + overhead


def test_quality_figures() -> None:
    q = prediction_quality([1.0, 2.0, 3.0, 4.0], [1.1, 1.9, 3.3, 4.0])
    assert q["spearman"] == pytest.approx(1.0) and q["n"] == 4
    assert q["mape"] == pytest.approx(100 * (0.1 / 1.1 + 0.1 / 1.9 + 0.3 / 3.3) / 4)
    assert prediction_quality([4.0, 3.0, 2.0], [1.0, 2.0, 3.0])["spearman"] == pytest.approx(-1.0)
    with pytest.raises(ConfigError, match="> 0"):
        prediction_quality([1.0, 2.0], [0.0, 1.0])


def test_table_predictor_fits_the_overhead_and_optionally_a_scale() -> None:
    space, tree, costs = _space_and_tree()
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(30)]
    y = [_true(a, costs) for a in archs]
    raw = TablePredictor(tree, space)
    assert raw.predict(archs[0]) == pytest.approx(y[0] - 0.5)  # unfitted: the plain table sum
    fitted = TablePredictor(tree, space).fit(archs[:10], y[:10])
    assert fitted.overhead == pytest.approx(0.5) and fitted.evaluate(archs[10:], y[10:])["mape"] < 1e-6
    y2 = [_true(a, costs, scale=1.7, overhead=-0.2) for a in archs]
    assert TablePredictor(tree, space).fit(archs[:10], y2[:10]).evaluate(archs[10:], y2[10:])["mape"] > 1
    scaled = TablePredictor(tree, space, fit_scale=True).fit(archs[:10], y2[:10])
    assert (scaled.scale, scaled.overhead) == pytest.approx((1.7, -0.2))
    assert scaled.evaluate(archs[10:], y2[10:])["mape"] < 1e-6


def test_xgboost_predictor_ranks_held_out_archs() -> None:
    space, _, costs = _space_and_tree()
    rng = random.Random(2)
    archs = [space.sample(rng) for _ in range(150)]
    y = [_true(a, costs) * (1 + rng.uniform(-0.02, 0.02)) for a in archs]  # 2 % measurement noise
    model = XGBoostPredictor(space, seed=0).fit(archs[:120], y[:120])
    q = model.evaluate(archs[120:], y[120:])
    assert q["spearman"] > 0.8 and q["mape"] < 10, q
    with pytest.raises(ConfigError, match="before fit"):
        XGBoostPredictor(space).predict(archs[0])
    with pytest.raises(ConfigError, match="one latency each"):
        XGBoostPredictor(space).fit(archs[:3], y[:2])


def test_cross_validation_holds_every_arch_out_once() -> None:
    space, tree, costs = _space_and_tree(4)
    rng = random.Random(3)
    archs = [space.sample(rng) for _ in range(20)]
    y = [_true(a, costs) for a in archs]
    q, preds = cross_validate(lambda: TablePredictor(tree, space), archs, y, folds=5)
    assert q["n"] == 20 and preds == pytest.approx(y) and q["spearman"] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="folds >= 2"):
        cross_validate(lambda: TablePredictor(tree, space), archs, y, folds=1)

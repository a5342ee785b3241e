"""Latency predictors fitted on measured subnets, and how well they predict held-out ones.

* ``TablePredictor``: the latency table's sum for the arch (a cost tree from ``latency_tree``) plus a fitted
  per-model overhead (the median residual; optionally a fitted scale too).
* ``XGBoostPredictor``: gradient-boosted trees on the space's features (one-hot choices, scaled numbers;
  optionally extra per-arch features such as static counts), fitted on log latency.

Both report ``spearman`` (rank correlation) and ``mape`` (mean absolute percentage error, in %) on held-out
subnets via ``evaluate``; ``cross_validate`` holds out every subnet once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..registry import Registry
from ..space import SearchSpace
from .tree import CostTree

PREDICTORS = Registry("latency predictor")
Arch = Mapping[str, Any]


def prediction_quality(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """``spearman`` rank correlation and ``mape`` (%) of ``predicted`` against ``measured``."""
    from scipy.stats import spearmanr

    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if p.shape != m.shape or len(p) < 2:
        raise ConfigError(f"prediction quality needs two equal-length lists of >= 2 values, got {p.shape}, {m.shape}")
    if np.any(m <= 0):
        raise ConfigError("measured latencies must be > 0 for a percentage error")
    rho = float(spearmanr(p, m).statistic) if np.ptp(p) > 0 and np.ptp(m) > 0 else 0.0
    return {"spearman": rho, "mape": float(np.mean(np.abs(p - m) / m) * 100.0), "n": float(len(p))}


class LatencyPredictor:
    """Base of the predictors: ``fit`` on measured archs, ``predict`` an arch's latency in ms."""

    def fit(self, archs: Sequence[Arch], latencies_ms: Sequence[float]) -> LatencyPredictor:
        """Fit on ``archs`` and their measured latencies; returns self."""
        raise NotImplementedError

    def predict(self, arch: Arch) -> float:
        """Predicted latency (ms) of ``arch``."""
        return self.predict_many([arch])[0]

    def predict_many(self, archs: Sequence[Arch]) -> list[float]:
        """Predicted latencies (ms) of ``archs``."""
        raise NotImplementedError

    def evaluate(self, archs: Sequence[Arch], latencies_ms: Sequence[float]) -> dict[str, float]:
        """Spearman and MAPE (%) of the predictions of held-out ``archs`` against their measured latencies."""
        return prediction_quality(self.predict_many(archs), latencies_ms)


def _check(archs: Sequence[Arch], latencies: Sequence[float], least: int) -> np.ndarray:
    y = np.asarray(latencies, dtype=float)
    if len(archs) != len(y) or len(y) < least:
        raise ConfigError(f"fitting a predictor needs >= {least} archs with one latency each; got {len(archs)} "
                          f"archs and {len(y)} latencies")
    if np.any(~np.isfinite(y)) or np.any(y <= 0):
        raise ConfigError("measured latencies must be finite and > 0")
    return y


@PREDICTORS.register("table")
class TablePredictor(LatencyPredictor):
    """The latency table's sum for an arch (``tree.evaluate(arch)["latency_ms"]``) plus a fitted overhead.

    Unfitted, the overhead is 0 (the plain table sum). ``fit`` sets it to the median of measured minus sum;
    with ``fit_scale`` it fits ``scale * sum + overhead`` by least squares instead.
    """

    def __init__(self, tree: CostTree, space: SearchSpace, fit_scale: bool = False) -> None:
        self.tree, self.space, self.fit_scale = tree, space, bool(fit_scale)
        self.scale, self.overhead = 1.0, 0.0

    def table_sum(self, arch: Arch) -> float:
        """The table's sum (ms) over the ops of ``arch``'s subnet (params it leaves out: current values)."""
        full = {**self.space.current(), **self.space.validate(arch)}
        return float(self.tree.evaluate(full)["latency_ms"])

    def fit(self, archs: Sequence[Arch], latencies_ms: Sequence[float]) -> TablePredictor:
        y = _check(archs, latencies_ms, 1)
        s = np.array([self.table_sum(a) for a in archs])
        if self.fit_scale and len(y) >= 2 and np.ptp(s) > 0:
            self.scale, self.overhead = (float(v) for v in np.polyfit(s, y, 1))
        else:
            self.scale, self.overhead = 1.0, float(np.median(y - s))
        return self

    def predict_many(self, archs: Sequence[Arch]) -> list[float]:
        return [self.scale * self.table_sum(a) + self.overhead for a in archs]


class StaticFeatures:
    """Per-arch extra features for ``XGBoostPredictor``: the static counts of a ``GraphCost`` (MACs, params,
    bytes read and written), which carry most of what latency depends on."""

    KEYS = ("macs", "params", "read_bytes", "write_bytes")

    def __init__(self, cost: Callable[[Arch], Mapping[str, float]]) -> None:
        self.cost = cost

    def __call__(self, arch: Arch) -> list[float]:
        c = self.cost(arch)
        return [float(c[k]) for k in self.KEYS]


XGB_DEFAULTS: dict[str, Any] = {"n_estimators": 400, "max_depth": 2, "learning_rate": 0.05, "subsample": 0.8,
                                "min_child_weight": 1.0, "n_jobs": 1}


@PREDICTORS.register("xgboost")
class XGBoostPredictor(LatencyPredictor):
    """XGBoost regression of log latency on the space's features, optionally with extra per-arch features.

    Features are ``fxnas.optim.smbo.encode``'s (one-hot choices, scaled numbers) plus the values of
    ``extra(arch)`` (e.g. ``StaticFeatures``: a GraphCost's MACs and bytes). Shallow trees by default: latency
    is close to a sum over the choices.
    """

    def __init__(self, space: SearchSpace, extra: Callable[[Arch], Sequence[float]] | None = None,
                 xgb_params: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.space, self.extra, self.seed = space, extra, int(seed)
        self.params = {**XGB_DEFAULTS, **dict(xgb_params or {})}
        self.model: Any = None

    def features(self, archs: Sequence[Arch]) -> np.ndarray:
        """The feature matrix of ``archs``."""
        from ..optim.smbo import encode

        full = [{**self.space.current(), **self.space.validate(a)} for a in archs]
        x = encode(self.space.discrete(), full)
        if self.extra is not None:
            x = np.concatenate([x, np.asarray([list(self.extra(a)) for a in full], dtype=np.float32)], axis=1)
        return x

    def fit(self, archs: Sequence[Arch], latencies_ms: Sequence[float]) -> XGBoostPredictor:
        from xgboost import XGBRegressor

        y = _check(archs, latencies_ms, 2)
        self.model = XGBRegressor(random_state=self.seed, **self.params)
        self.model.fit(self.features(archs), np.log(y))
        return self

    def predict_many(self, archs: Sequence[Arch]) -> list[float]:
        if self.model is None:
            raise ConfigError("XGBoostPredictor.predict before fit: fit it on measured subnets first")
        return [math.exp(float(v)) for v in self.model.predict(self.features(archs))]


def cross_validate(make: Callable[[], LatencyPredictor], archs: Sequence[Arch], latencies_ms: Sequence[float],
                   folds: int = 5, seed: int = 0) -> tuple[dict[str, float], list[float]]:
    """(quality, predictions): each subnet predicted by a predictor fitted on the other folds."""
    n = len(archs)
    if folds < 2 or n < folds:
        raise ConfigError(f"cross-validation needs folds >= 2 and at least one arch per fold; got {folds}, {n}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    preds = [0.0] * n
    for f in range(folds):
        held = order[f::folds]
        held_set = set(held)
        train = [i for i in order if i not in held_set]
        model = make().fit([archs[i] for i in train], [latencies_ms[i] for i in train])
        for i, p in zip(held, model.predict_many([archs[i] for i in held])):
            preds[i] = p
    return prediction_quality(preds, latencies_ms), preds

"""ModelBased: sequential model-based optimisation with an XGBoost surrogate (regression or pairwise ranking)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..objectives import total_violation
from ..space import Categorical, Numerical, Param, SearchSpace
from .base import OPTIMIZERS, arch_key
from .discrete import Arch, DiscreteOptimizer
from .surrogate import TreeEnsemble

_OBJECTIVES = ("regression", "ranking")
_ACQUISITIONS = ("annealing", "random")


def encode(params: Mapping[str, Param], archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Feature matrix of ``archs``: one-hot per Categorical, a value scaled to [0, 1] per Numerical."""
    n = len(archs)
    widths = [len(p.choices) if isinstance(p, Categorical) else 1 for p in params.values()]
    X = np.zeros((n, sum(widths)), np.float32)
    rows, col = np.arange(n), 0
    for (k, p), width in zip(params.items(), widths):
        vals = [a[k] for a in archs]
        if isinstance(p, Categorical):
            X[rows, col + np.fromiter((p.choices.index(v) for v in vals), np.int64, n)] = 1.0
        elif isinstance(p, Numerical):
            v = np.asarray(vals, dtype=np.float64)
            lo, hi = float(p.low), float(p.high)
            if p.log and lo > 0:
                v, lo, hi = np.log(v), math.log(lo), math.log(hi)
            X[:, col] = ((v - lo) / (hi - lo)) if hi > lo else 0.0
        else:
            raise ConfigError(f"cannot encode param {p!r} for a surrogate")
        col += width
    return X


@OPTIMIZERS.register("ModelBased")
class ModelBased(DiscreteOptimizer):
    """SMBO: fit an XGBoost surrogate on the evaluated archs, propose the archs it predicts best.

    Options: ``objective`` ``regression`` (squared error on the score) or ``ranking`` (``rank:pairwise`` on
    score ranks); ``acquisition`` ``annealing`` (simulated annealing over one-param mutations from the best
    archs, ``chains`` x ``anneal_steps``) or ``random`` (best of ``n_candidates`` random archs); ``init_random``
    random archs first; each later proposal is random with probability ``epsilon``; ``xgb_params`` override
    the surrogate's hyperparameters. ``refit_growth``: the surrogate is refit when the successful evaluations
    grew by this fraction since its last fit (fits at 10, 12, 14, 16, 19... results with 0.2; 0 refits after
    every evaluation); between refits proposals come from the last acquisition's ranked candidates. A fit
    costs tens of milliseconds, so refitting after every one of 100 table lookups made the refits the whole
    cost of a search. The fit points are a function of the history's length, and the candidate queue is
    part of the state, so a resumed search proposes what an uninterrupted one does.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, objective: str = "regression",
                 acquisition: str = "annealing", init_random: int = 10, epsilon: float = 0.1,
                 n_candidates: int = 1000, chains: int = 10, anneal_steps: int = 100,
                 xgb_params: Mapping[str, Any] | None = None, refit_growth: float = 0.2, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        if objective not in _OBJECTIVES:
            raise ConfigError(f"ModelBased objective must be one of {_OBJECTIVES}, got {objective!r}")
        if acquisition not in _ACQUISITIONS:
            raise ConfigError(f"ModelBased acquisition must be one of {_ACQUISITIONS}, got {acquisition!r}")
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"epsilon must be in [0, 1], got {epsilon}")
        if not refit_growth >= 0.0:
            raise ConfigError(f"ModelBased refit_growth must be >= 0 (0: refit after every evaluation), "
                              f"got {refit_growth}")
        self.refit_growth = float(refit_growth)
        self.objective_kind, self.acquisition = objective, acquisition
        self.init_random, self.epsilon = max(1, int(init_random)), float(epsilon)
        self.n_candidates, self.chains, self.anneal_steps = int(n_candidates), int(chains), int(anneal_steps)
        self.xgb_params = {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.1, "n_jobs": 1,
                           "random_state": 0 if seed is None else int(seed) % (2**31), **(xgb_params or {})}
        self._model: TreeEnsemble | None = None
        self._fitted_on = -1  # successful results the surrogate was fit on
        self._queue: list[Arch] = []  # the last acquisition's candidates, best predicted first
        self._queue_fit = -1  # the fit size of the surrogate that ranked the queue

    # --- surrogate ----------------------------------------------------------------------------------
    def fit_size(self, n_ok: int) -> int:
        """How many of the first ``n_ok`` successful results the surrogate is fit on (the last fit point)."""
        point = 1
        while True:
            nxt = max(point + 1, math.floor(point * (1.0 + self.refit_growth)))
            if nxt > n_ok:
                return min(point, n_ok)
            point = nxt

    def _fit(self) -> TreeEnsemble | None:
        """Refit the surrogate on the first ``fit_size`` successful results (only at a new fit point), so
        resuming needs no model state."""
        ok = [r for r in self.history if not r.failed]  # a failed evaluation says nothing about its metric
        size = self.fit_size(len(ok))
        if self._queue_fit != size:  # a new fit point: the queue was ranked by the previous surrogate
            self._queue, self._queue_fit = [], size
        if self._fitted_on == size:
            return self._model
        if not ok:
            self._model, self._fitted_on = None, 0
            return None
        import xgboost as xgb

        ok = ok[:size]
        X = encode(self.params, [r.arch for r in ok])
        scores = np.array([self.score(r) for r in ok], dtype=np.float64)
        if self.objective_kind == "ranking":
            y = np.argsort(np.argsort(scores, kind="stable"), kind="stable").astype(np.float64)  # ranks
            model = xgb.XGBRanker(objective="rank:pairwise", **self.xgb_params)
            model.fit(X, y, qid=np.zeros(len(y), dtype=np.int64))
        else:
            feas = np.array([total_violation(r.metrics, self.constraints) == 0 for r in ok])
            if not feas.all():  # infeasible: below the worst feasible by their violation, not at -1e30
                viol = np.array([total_violation(r.metrics, self.constraints) for r in ok])
                base = scores[feas].min() - max(1.0, float(scores[feas].std())) if feas.any() else 0.0
                scores[~feas] = base - viol[~feas]
            model = xgb.XGBRegressor(objective="reg:squarederror", **self.xgb_params)
            model.fit(X, scores)
        self._model, self._fitted_on = TreeEnsemble(model.get_booster()), size
        return self._model

    def predict(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Surrogate scores of ``archs`` (higher is better)."""
        model = self._fit()
        if model is None:  # nothing but failures so far: no preference
            return np.zeros(len(archs), dtype=np.float64)
        return np.asarray(model.predict(encode(self.params, archs)), dtype=np.float64)

    # --- acquisition --------------------------------------------------------------------------------
    def _candidates(self) -> list[tuple[float, Arch]]:
        """Unseen archs the acquisition visited, with predicted scores."""
        found: dict[tuple, tuple[float, Arch]] = {}

        def note(archs: list[Arch], preds: np.ndarray) -> None:
            for a, p in zip(archs, preds):
                if not self.seen(a):
                    found.setdefault(arch_key(a), (float(p), a))

        self._fit()
        if self.acquisition == "random":
            pool = [self.random_arch() for _ in range(self.n_candidates)]
            note(pool, self.predict(pool))
        else:
            ranked = sorted(range(len(self.history)), key=lambda i: (-self.score(self.history[i]), i))
            cur = [dict(self.history[ranked[i % len(ranked)]].arch) for i in range(self.chains)]
            cur_p = self.predict(cur)
            spread = float(np.std(self.predict([r.arch for r in self.history]))) or 1.0
            for t in range(self.anneal_steps):
                temp = spread * (1.0 - t / self.anneal_steps) + 1e-9
                props = [self.mutate(a) for a in cur]
                pp = self.predict(props)
                note(props, pp)
                for i in range(len(cur)):
                    if pp[i] >= cur_p[i] or self.rng.random() < math.exp((pp[i] - cur_p[i]) / temp):
                        cur[i], cur_p[i] = props[i], pp[i]
        return sorted(found.values(), key=lambda x: -x[0])

    def next(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` archs: random during the initial design or with probability ``epsilon``, else best predicted."""
        out: list[Arch] = []
        while len(out) < n:
            if len(self.history) < self.init_random or self.n_proposed < self.init_random \
                    or self.rng.random() < self.epsilon:
                a = self.fresh(self.random_arch)
            else:
                a = self._from_queue()
            if a is None:
                break
            out.append(a)
        return out

    def _from_queue(self) -> Arch | None:
        """The best predicted unseen candidate: from the queue while the surrogate stands, else from a new
        acquisition; a random arch when the acquisition found nothing unseen."""
        self._fit()  # a new fit point empties the queue
        for attempt in range(2):
            while self._queue and self.seen(self._queue[0]) and not self.allow_repeat:
                self._queue.pop(0)
            if self._queue:
                return self._take(self._queue.pop(0))
            if attempt == 0:
                self._queue = [arch for _, arch in self._candidates()]
        return self.fresh(self.random_arch)

    def state_dict(self) -> dict[str, Any]:
        """The discrete optimizer's state plus the candidate queue (the surrogate is refit from the history)."""
        return {**super().state_dict(), "queue": [dict(a) for a in self._queue], "queue_fit": self._queue_fit}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict (the surrogate is refit from the history on demand, the queue kept)."""
        super().load_state_dict(state)
        self._model, self._fitted_on = None, -1
        self._queue = [dict(a) for a in state.get("queue", [])]
        self._queue_fit = int(state.get("queue_fit", -1))

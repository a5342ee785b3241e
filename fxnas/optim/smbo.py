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

_OBJECTIVES = ("regression", "ranking")
_ACQUISITIONS = ("annealing", "random")


def encode(params: Mapping[str, Param], archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Feature matrix of ``archs``: one-hot per Categorical, a value scaled to [0, 1] per Numerical."""
    cols: list[np.ndarray] = []
    for k, p in params.items():
        vals = [a[k] for a in archs]
        if isinstance(p, Categorical):
            idx = np.array([p.choices.index(v) for v in vals])
            cols.append(np.eye(len(p.choices), dtype=np.float32)[idx])
        elif isinstance(p, Numerical):
            v = np.asarray(vals, dtype=np.float64)
            lo, hi = float(p.low), float(p.high)
            if p.log and lo > 0:
                v, lo, hi = np.log(v), math.log(lo), math.log(hi)
            cols.append((((v - lo) / (hi - lo)) if hi > lo else v * 0.0).astype(np.float32)[:, None])
        else:
            raise ConfigError(f"cannot encode param {p!r} for a surrogate")
    return np.concatenate(cols, axis=1) if cols else np.zeros((len(archs), 0), np.float32)


@OPTIMIZERS.register("ModelBased")
class ModelBased(DiscreteOptimizer):
    """SMBO: fit an XGBoost surrogate on the evaluated archs, propose the archs it predicts best.

    Options: ``objective`` ``regression`` (squared error on the score) or ``ranking`` (``rank:pairwise`` on
    score ranks); ``acquisition`` ``annealing`` (simulated annealing over one-param mutations from the best
    archs, ``chains`` x ``anneal_steps``) or ``random`` (best of ``n_candidates`` random archs); ``init_random``
    random archs first; each later proposal is random with probability ``epsilon``; ``xgb_params`` override
    the surrogate's hyperparameters.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, objective: str = "regression",
                 acquisition: str = "annealing", init_random: int = 10, epsilon: float = 0.1,
                 n_candidates: int = 1000, chains: int = 10, anneal_steps: int = 100,
                 xgb_params: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        if objective not in _OBJECTIVES:
            raise ConfigError(f"ModelBased objective must be one of {_OBJECTIVES}, got {objective!r}")
        if acquisition not in _ACQUISITIONS:
            raise ConfigError(f"ModelBased acquisition must be one of {_ACQUISITIONS}, got {acquisition!r}")
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"epsilon must be in [0, 1], got {epsilon}")
        self.objective_kind, self.acquisition = objective, acquisition
        self.init_random, self.epsilon = max(1, int(init_random)), float(epsilon)
        self.n_candidates, self.chains, self.anneal_steps = int(n_candidates), int(chains), int(anneal_steps)
        self.xgb_params = {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.1, "n_jobs": 1,
                           "random_state": 0 if seed is None else int(seed) % (2**31), **(xgb_params or {})}
        self._model: Any = None
        self._fitted_on = -1

    # --- surrogate ----------------------------------------------------------------------------------
    def _fit(self) -> Any:
        """Refit the surrogate on the whole history (only when it grew), so resuming needs no model state."""
        if self._fitted_on == len(self.history):
            return self._model
        import xgboost as xgb

        ok = [r for r in self.history if not r.failed]  # a failed evaluation says nothing about its metric
        if not ok:
            self._model, self._fitted_on = None, len(self.history)
            return None
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
        self._model, self._fitted_on = model, len(self.history)
        return model

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
        queue: list[Arch] | None = None
        while len(out) < n:
            if len(self.history) < self.init_random or self.n_proposed < self.init_random \
                    or self.rng.random() < self.epsilon:
                a = self.fresh(self.random_arch)
            else:
                if queue is None:
                    queue = [arch for _, arch in self._candidates()]
                while queue and self.seen(queue[0]) and not self.allow_repeat:
                    queue.pop(0)
                a = self._take(queue.pop(0)) if queue else self.fresh(self.random_arch)
            if a is None:
                break
            out.append(a)
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict (the surrogate is refit from the history on demand)."""
        super().load_state_dict(state)
        self._model, self._fitted_on = None, -1

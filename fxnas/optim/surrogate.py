"""A fitted XGBoost tree ensemble evaluated with numpy: the surrogate's predictions without per-call overhead.

An acquisition (ModelBased's annealing) predicts a few archs at a time, hundreds of times per proposal;
``xgboost``'s predict costs milliseconds a call whatever the batch, which made those calls the bulk of a
table search. ``TreeEnsemble`` reads the booster's trees once (its JSON model: children, split features,
thresholds, leaf values and the base score) and evaluates every tree at once, level by level, with numpy
gathers: the same sums (xgboost sends ``x < threshold`` left; leaves hold their learning-rate-scaled
values), to float32 rounding, for identity-link objectives (``reg:squarederror``, ``rank:pairwise``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import ConfigError

IDENTITY_OBJECTIVES = ("reg:squarederror", "rank:pairwise")


class TreeEnsemble:
    """The trees of one fitted single-output booster as padded arrays (tree x node)."""

    def __init__(self, booster: Any) -> None:
        raw = json.loads(booster.save_raw("json"))
        learner = raw["learner"]
        objective = learner["objective"]["name"]
        if objective not in IDENTITY_OBJECTIVES:
            raise ConfigError(f"TreeEnsemble evaluates identity-link objectives {IDENTITY_OBJECTIVES}, "
                              f"got {objective!r}")
        self.base = float(np.asarray(json.loads(learner["learner_model_param"]["base_score"])).reshape(-1)[0])
        trees = learner["gradient_booster"]["model"]["trees"]
        n_nodes = max((len(t["left_children"]) for t in trees), default=1)
        shape = (max(1, len(trees)), n_nodes)
        self.feature = np.zeros(shape, np.int64)
        self.threshold = np.zeros(shape, np.float32)
        self.value = np.zeros(shape, np.float32)  # the leaf value at leaves (0 in padding and inner nodes)
        ident = np.broadcast_to(np.arange(n_nodes), shape)
        self.left, self.right = ident.copy(), ident.copy()  # leaves and padding point at themselves
        for i, t in enumerate(trees):
            left, right = np.asarray(t["left_children"]), np.asarray(t["right_children"])
            cond = np.asarray(t["split_conditions"], np.float32)
            inner = left >= 0
            n = len(left)
            self.left[i, :n] = np.where(inner, left, np.arange(n))
            self.right[i, :n] = np.where(inner, right, np.arange(n))
            self.feature[i, :n] = np.where(inner, np.asarray(t["split_indices"]), 0)
            self.threshold[i, :n] = np.where(inner, cond, 0.0)
            self.value[i, :n] = np.where(inner, 0.0, cond)
        self.depth = max((_depth(np.asarray(t["left_children"]), np.asarray(t["right_children"])) for t in trees),
                         default=0)
        self.rows = np.arange(shape[0])[None, :]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The booster's output for every row of ``X`` (float64)."""
        X = np.asarray(X, np.float32)
        n_trees, n_nodes = self.feature.shape
        base = np.arange(n_trees) * n_nodes  # flat index of each tree's root
        feature, threshold = self.feature.ravel(), self.threshold.ravel()
        left, right = (self.left + base[:, None]).ravel(), (self.right + base[:, None]).ravel()
        node = np.broadcast_to(base, (X.shape[0], n_trees))
        row = (np.arange(X.shape[0]) * X.shape[1])[:, None]
        flat_x = X.ravel()
        for _ in range(self.depth):
            go_left = flat_x[row + feature[node]] < threshold[node]
            node = np.where(go_left, left[node], right[node])
        return self.base + self.value.ravel()[node].sum(axis=1, dtype=np.float64)


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Edges on the longest root-to-leaf path of one tree."""
    depth, frontier = 0, [0]
    while True:
        nxt = [c for n in frontier for c in (left[n], right[n]) if c >= 0]
        if not nxt:
            return depth
        depth, frontier = depth + 1, nxt

"""Optimizer base classes: discrete optimizers propose archs; gradient optimizers step TensorParams."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..registry import Registry
from ..space import SearchSpace

OPTIMIZERS = Registry("optimizer")


def arch_key(arch: Mapping[str, Any]) -> tuple:
    """A hashable key of an arch (sorted items), for de-duplication."""
    return tuple(sorted((k, v if not isinstance(v, list) else tuple(v)) for k, v in arch.items()))


@dataclass
class Result:
    """One evaluated arch and its metrics (higher is better unless an objective says otherwise)."""

    arch: dict[str, Any]
    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for history files and checkpoints."""
        return {"arch": dict(self.arch), "metrics": dict(self.metrics), "info": dict(self.info)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        """Inverse of to_dict."""
        return cls(dict(d["arch"]), dict(d["metrics"]), dict(d.get("info", {})))


class Optimizer:
    """Search algorithm Ω: ``next()`` proposes archs, ``step(results)`` learns from their metrics."""

    gradient = False  # True for optimizers of TensorParams (driven by the SuperNet estimator)

    def __init__(self, space: SearchSpace, seed: int | None = 0, **kwargs: Any) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(kwargs)}")

    def next(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose up to ``n`` archs (fewer, or none, when the space is exhausted)."""
        raise NotImplementedError

    def step(self, results: list[Result]) -> None:
        """Learn from evaluated archs."""

    def best(self) -> dict[str, Any]:
        """The best arch found so far (gradient optimizers derive it from their TensorParams)."""
        return self.space.derive()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: the RNG state plus subclass state."""
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict."""
        self.rng.setstate(_as_rng_state(state["rng"]))


def _as_rng_state(s: Any) -> tuple:
    """random.getstate() survives JSON/YAML as nested lists; turn it back into tuples."""
    return (s[0], tuple(s[1]), s[2]) if isinstance(s, (list, tuple)) else s


class GradientOptimizer(Optimizer):
    """Optimizer of the space's TensorParams, driven by the SuperNet estimator.

    The estimator calls ``step_arch(exp, train_batch, valid_batch)`` every ``arch_update_intv`` weight
    steps and ``on_epoch_end(exp, epoch)`` after each epoch; ``next()`` returns the derived arch.
    """

    gradient = True

    def next(self, n: int = 1) -> list[dict[str, Any]]:
        return [self.space.derive()]

    def step_arch(self, exp: Any, train_batch: Any, valid_batch: Any) -> dict[str, float]:
        """One update of the arch params; returns scalars to log (e.g. the arch loss)."""
        raise NotImplementedError

    def on_epoch_end(self, exp: Any, epoch: int) -> None:
        """Per-epoch schedule hook (temperature annealing...)."""

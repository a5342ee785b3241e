"""Optimizer base classes: discrete optimizers propose archs; gradient optimizers step TensorParams."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..distributed import Distributed
from ..errors import ConfigError
from ..registry import Registry
from ..space import SearchSpace

if TYPE_CHECKING:
    from torch import nn

    from ..train.trainer import Trainer

OPTIMIZERS = Registry("optimizer", internal=("space",))


class ArchStepContext(Protocol):
    """What a gradient optimizer may use of the running search: the supernet, its space and the trainer."""

    model: nn.Module
    space: SearchSpace
    trainer: Trainer


def arch_key(arch: Mapping[str, Any]) -> tuple:
    """A hashable key of an arch (sorted items), for de-duplication."""
    return tuple(sorted((k, v if not isinstance(v, list) else tuple(v)) for k, v in arch.items()))


@dataclass
class Result:
    """One evaluated arch and its metrics (higher is better unless an objective says otherwise)."""

    arch: dict[str, Any]
    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> str | None:
        """Why the evaluation failed (a non-finite loss or metric, a diverged training), or None."""
        return self.info.get("failed")

    @classmethod
    def failure(cls, arch: Mapping[str, Any], reason: str, info: Mapping[str, Any] | None = None) -> Result:
        """A failed evaluation of ``arch``: no metrics, ranks below every other result."""
        return cls(dict(arch), {}, {**dict(info or {}), "failed": reason, "rank": False})

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for history files and checkpoints."""
        return {"arch": dict(self.arch), "metrics": dict(self.metrics), "info": dict(self.info)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        """Inverse of to_dict."""
        return cls(dict(d["arch"]), dict(d["metrics"]), dict(d.get("info", {})))


class TrialPruner:
    """Early stopping of one evaluation under way (Optuna's pruning; ``Optimizer.pruner`` hands one out).

    The evaluation reports its intermediate metrics as it goes (a training's per-epoch accuracy, a script's
    per-step lines); ``report`` returns True when the optimizer judges the arch hopeless and the evaluation
    should stop (its Result then carries ``info["pruned"]``). A pruner is plain data around what it needs to
    reach the optimizer's records, so it travels to another process with the evaluation that uses it.
    """

    def report(self, step: int, metrics: Mapping[str, float]) -> bool:
        """Record the metrics at ``step``; True: stop this evaluation now."""
        raise NotImplementedError


class Optimizer:
    """Search algorithm Ω: ``next()`` proposes archs, ``step(results)`` learns from their metrics.

    Built by ``OPTIMIZERS.build(spec, inject={"space": ..., "seed": ...})``. What the search loop calls::

        on_start(ctx)              the stage that uses this optimizer begins (not on resume)
        next(n) -> [arch]          propose up to n archs ([] when the space is exhausted)
          ... the estimator evaluates them ...
        step([Result])             learn from the results (failed ones included: Result.failed)
        best() -> arch             the best arch so far
        pruner(arch) -> TrialPruner | None   early stopping of that arch's evaluation (None: never pruned)
        state_dict() / load_state_dict(state)   everything a resumed run needs (plain data and tensors)
        on_resume(ctx)             after load_state_dict on resume: re-apply state kept outside the optimizer

    Subclasses: DiscreteOptimizer (archs proposed and scored) and GradientOptimizer (alphas stepped).
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, **kwargs: Any) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        if kwargs:
            raise ConfigError(f"{type(self).__name__} got unknown options {sorted(kwargs)}")

    def on_start(self, ctx: Any) -> None:
        """The stage that uses this optimizer begins afresh."""

    def on_resume(self, ctx: Any) -> None:
        """A run was resumed: state_dict is loaded; re-apply what lives outside the optimizer."""

    def next(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose up to ``n`` archs (fewer, or none, when the space is exhausted)."""
        raise NotImplementedError

    def step(self, results: list[Result]) -> None:
        """Learn from evaluated archs."""

    def best(self) -> dict[str, Any]:
        """The best arch found so far (gradient optimizers derive it from their TensorParams)."""
        return self.space.derive()

    def pruner(self, arch: Mapping[str, Any]) -> TrialPruner | None:
        """A TrialPruner for the evaluation of ``arch`` (proposed by ``next``), or None: it runs to the end."""
        return None

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
    """Optimizer of the space's TensorParams (alphas), driven by the SuperNet estimator::

        on_start(ctx)                                   the search stage begins (e.g. set a temperature)
        for each epoch:
            for each weight step:
                step_arch(ctx, train_batch, valid_batch)  every ``arch_update_intv`` steps, before the weight
                                                          step on the same batch; scalars to log
                weight step                               under fixed_arch() when ``fixed_weight_steps``
            on_epoch_end(ctx, epoch)                    per-epoch schedule (temperature annealing...)
        next() / best()                                 the derived arch
        on_resume(ctx)                                  after a resume

    ``ctx`` is an ArchStepContext (model, space, trainer).
    """

    fixed_weight_steps = False  # True: weight steps train only the applied arch (REINFORCE samples it)
    # the run's ranks (fxnas.distributed); the Experiment sets it: arch gradients are averaged over them
    distributed: Distributed = Distributed()
    default_mixed_op = "SoftmaxSum"  # the mixed op of the method's paper (what a supernet for it is built with)

    def next(self, n: int = 1) -> list[dict[str, Any]]:
        return [self.best()]

    def step_arch(self, exp: ArchStepContext, train_batch: Any, valid_batch: Any) -> dict[str, float]:
        """One update of the arch params; returns scalars to log (e.g. the arch loss)."""
        raise NotImplementedError

    def on_epoch_end(self, exp: ArchStepContext, epoch: int) -> None:
        """Per-epoch schedule hook (temperature annealing...)."""

"""Estimator base: an estimation strategy drives the loop for its kind of search and returns Results.

An estimator sees the running search through ``SearchContext``, a small declared interface (the
Experiment implements it), never the whole experiment: its components, where the stage stands, and the
services that record, checkpoint, train and evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError
from ..optim.base import Optimizer, Result
from ..registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..progress import Tracker
    from ..space import SearchSpace
    from ..train.datasets import DataBundle
    from ..train.trainer import Trainer

ESTIMATORS = Registry("estimator")


class SearchContext(Protocol):
    """What an estimator may use of the running search (fxnas.experiment.Experiment implements it)."""

    model: nn.Module | None  # the supernet
    space: SearchSpace | None
    data: DataBundle | None
    trainer: Trainer | None
    optimizer: Optimizer | None
    seed: int
    device: torch.device
    stage: int  # index of the running estimator in the chain
    parallel: dict[str, Any]  # where discrete evaluations run (fxnas.pool settings: backend, workers, ...)
    history: list[Result]
    best: Result | None

    def is_last_stage(self) -> bool:
        """True while the last estimator of the chain runs."""

    def stage_results(self, loop_only: bool = False) -> list[Result]:
        """The results the running stage recorded."""

    def record(self, result: Result) -> Result:
        """Add a result to the history (and maybe make it the best)."""

    def record_alphas(self, epoch: int) -> None:
        """Log the arch weights of this epoch."""

    def checkpoint(self) -> Path:
        """Save everything a resumed run needs."""

    def configure_trainer(self, epochs: int | None = None) -> None:
        """Build the trainer's weight optimizer for this stage (once)."""

    def evaluate(self, model: nn.Module | None = None, split: str = "valid",
                 max_steps: int | None = None) -> dict[str, float]:
        """The trainer's metrics of ``model`` (default: the supernet) on a data split."""

    def evaluate_loop(self, evaluate_fn: Callable[[dict], Mapping[str, float] | Result], budget: int,
                      batch_size: int = 1) -> list[Result]:
        """The resumable propose → evaluate → step loop over the optimizer's proposals."""

    def track(self, total: int, description: str, completed: int = 0) -> AbstractContextManager[Tracker]:
        """A progress bar."""

    def log(self, msg: str, style: str | None = None, console: bool = True) -> None:
        """Write a line to the run's log (and the console)."""

    def score(self, result: Result) -> float:
        """Higher-is-better score of a result on the first objective."""


class Estimator:
    """Estimation strategy (ω, η): trains/evaluates under the context's optimizer, returns Results.

    Built by ``ESTIMATORS.build(spec)``; the experiment runs the chain in order, each ``run`` resumable::

        run(ctx) -> [Result]         run this stage (continuing from load_state_dict's progress)
        metric_names(ctx) -> {str}   the metrics its results carry (None: not known before running), so a
                                     misspelt objective or constraint is refused before the search starts
        state_dict() / load_state_dict(state)   progress of the stage, for checkpoints
        parallel_safe: bool          its evaluate function is picklable and independent of the live
                                     supernet and RNGs, so evaluations may run on other processes (dask)
        space_kind: str              the supernet it needs: "any", or "elastic" (elastic params, from
                                     fxnas.elasticize or a config's elastic section)
        final_subnet(ctx, arch)      a standalone subnet of ``arch`` it trained (Retrain), exported instead
                                     of one materialised from the supernet (None: it made none)
    """

    parallel_safe: bool = False
    space_kind: str = "any"

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise ConfigError(f"{type(self).__name__} got unknown options {sorted(kwargs)}")

    def run(self, exp: SearchContext) -> list[Result]:
        """Run this stage of the search on ``exp`` (resuming from its checkpoint state)."""
        raise NotImplementedError

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The metric names this estimator's results carry: the trainer's by default (None when unknown)."""
        return exp.trainer.metric_names() if exp.trainer is not None else None

    def state_dict(self) -> dict[str, Any]:
        """Progress of this stage, for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore progress saved by state_dict."""

    def final_subnet(self, exp: SearchContext, arch: Mapping[str, Any]) -> nn.Module | None:
        """A trained standalone subnet of ``arch`` this estimator made (Retrain), which the experiment exports
        instead of materialising ``arch`` from the supernet; None (the default) when it made none."""
        return None


def check_space_kind(est: Estimator, exp: SearchContext) -> None:
    """ConfigError when the experiment's space is not of the kind ``est.space_kind`` needs."""
    if est.space_kind == "elastic":
        from ..elastic.params import elastic_params

        if exp.space is None or not elastic_params(exp.space):
            raise ConfigError(f"{type(est).__name__} needs an elastic supernet (width, kernel or depth params); "
                              f"add an elastic section to the config (e.g. elastic: {{width: [0.5, 1.0]}}) or "
                              f"build the model with fxnas.elasticize")


def require(exp: SearchContext, who: str, *parts: str) -> None:
    """ConfigError unless ``exp`` has each of ``parts`` (model, data, trainer, optimizer, space)."""
    missing = [n for n in parts if getattr(exp, n) is None]
    if missing:
        raise ConfigError(f"{who} needs {', '.join(missing)} in the experiment")

"""What a tuning run evaluates: a TuneTarget turns one set of param values into metrics.

Targets are components of ``TUNE_TARGETS`` (``target: {type: Experiment, config: exp.yaml}`` in a tune
config): ``Experiment`` runs an fxnas experiment with the params as config overrides; ``Command`` runs an
external program with the params as arguments. A target is plain data (it is pickled to worker processes);
``run_trial`` is the picklable function the executor runs for each trial.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..optim.base import Result, TrialPruner
from ..registry import Registry
from ..space import SearchSpace

TUNE_TARGETS = Registry("tune target", internal=("base_dir",))


class Pruned(Exception):
    """Raised inside an evaluation when its pruner says stop (caught by run_trial)."""

    def __init__(self, step: int, metrics: Mapping[str, float]) -> None:
        super().__init__(f"pruned at step {step}")
        self.step, self.metrics = int(step), dict(metrics)


class TrialFailed(Exception):
    """An evaluation that failed for this trial's values (the command exited non-zero, no metric...)."""


@dataclass
class TrialRun:
    """One trial as a target sees it: its number, its own folder, and the pruner of its evaluation."""

    number: int
    workdir: Path
    pruner: TrialPruner | None = None

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        """Pass intermediate metrics to the pruner; raises Pruned when the trial should stop."""
        if self.pruner is not None and self.pruner.report(step, metrics):
            raise Pruned(step, metrics)


class TuneTarget:
    """Base of tuning targets::

        check(space)                  ConfigError before any trial when a param cannot apply (unknown key)
        evaluate(params, trial)       the metrics of one trial; report intermediate metrics with
                                      trial.report(step, metrics) (it raises Pruned to stop early); raise
                                      TrialFailed for a failure of these values
        default_metric                the metric an unnamed objective means (None: each result's first)
    """

    default_metric: str | None = None

    def check(self, space: SearchSpace) -> None:
        """ConfigError when a param of ``space`` cannot be applied by this target."""

    def evaluate(self, params: Mapping[str, Any], trial: TrialRun) -> dict[str, float]:
        """The metrics of ``params``."""
        raise NotImplementedError


def run_trial(target: TuneTarget, params: dict[str, Any], trial: TrialRun) -> Result:
    """Evaluate ``params`` on ``target``: a Result, a pruned one, or a failed one (never raises)."""
    trial.workdir.mkdir(parents=True, exist_ok=True)
    info = {"trial": trial.number}
    try:
        metrics = target.evaluate(params, trial)
    except Pruned as p:
        return Result.failure(params, str(p), {**info, "pruned": True, "step": p.step, "last": p.metrics})
    except TrialFailed as exc:
        return Result.failure(params, str(exc), info)
    except Exception as exc:  # the trial's values broke the evaluation: recorded, and the tuning goes on
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Result.failure(params, f"{type(exc).__name__}: {' '.join(str(exc).split())} "
                                      f"({Path(where.filename).name}:{where.lineno})", info)
    return Result(dict(params), {k: float(v) for k, v in metrics.items()}, info)

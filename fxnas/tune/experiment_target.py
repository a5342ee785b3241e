"""The Experiment tuning target: run an fxnas experiment config with the trial's params as overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..options import FilePath
from ..space import SearchSpace
from .space import midpoint
from .target import TUNE_TARGETS, TrialRun, TuneTarget


def override(key: str, value: Any) -> str:
    """``key=value`` with the value written so that the YAML of an override reads it back unchanged."""
    return f"{key}={json.dumps(value)}"


def experiment_ref(config: str) -> str:
    """A config path, or the packaged config named by its stem when no such file exists (``demo``)."""
    from ..config import packaged_configs

    p = Path(config)
    return config if p.is_file() or p.stem not in packaged_configs() or p.suffix else p.stem


@TUNE_TARGETS.register("Experiment")
class ExperimentTarget(TuneTarget):
    """An fxnas experiment config (a YAML file, or a packaged config's name) run once per trial, each tuned
    key (``trainer.lr``, ``estim.0.epochs``...) set as an override; ``overrides`` apply to every trial.

    Metrics: the best result's (``acc``, ``loss``...), and the exported subnet's test metrics as
    ``test_<name>``. Every recorded result is reported to the pruner (step = its index), so a pruned trial
    stops inside its search.
    """

    def __init__(self, config: FilePath, overrides: Sequence[str] = (), threads: int | None = 1) -> None:
        self.config = experiment_ref(str(config))
        self.overrides = list(overrides)
        self.threads = threads

    def _load(self, params: Mapping[str, Any], out_root: str) -> dict[str, Any]:
        from ..config import load_config

        extra = [f"threads={self.threads}"] if self.threads else []
        return load_config(self.config, [*extra, *self.overrides, *(override(k, v) for k, v in params.items())],
                           name="exp", out_root=out_root)

    def check(self, space: SearchSpace) -> None:
        """Every tuned key must be a valid override of the experiment (its schema says why not)."""
        for name, p in space.discrete().items():
            try:
                self._load({name: midpoint(p)}, "exp")
            except ConfigError as exc:
                raise ConfigError(f"space.{name} does not apply to {self.config}: {exc}") from None

    def evaluate(self, params: Mapping[str, Any], trial: TrialRun) -> dict[str, float]:
        """Run the experiment in the trial's folder; the best result's metrics (+ test_ metrics)."""
        from ..config import build_experiment
        from ..optim.base import Result
        from ..progress import make_console

        cfg = self._load(params, str(trial.workdir))
        exp = build_experiment(cfg, console=make_console(quiet=True), progress=False)
        record = exp.record

        def record_and_report(result: Result) -> Result:
            # the experiment has no per-result hook: wrap this instance's record so the pruner sees each result
            out = record(result)
            if not out.failed and out.info.get("rank", True) is not False:
                trial.report(len(exp.history), out.metrics)
            return out

        exp.record = record_and_report  # type: ignore[method-assign]
        summary = exp.run(overwrite=True)
        metrics = dict(summary["metrics"])
        metrics.update({f"test_{k}": v for k, v in summary.get("test_metrics", {}).items()})
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}

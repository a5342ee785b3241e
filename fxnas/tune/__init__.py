"""Tuning: any config key of an experiment, or the arguments of an external command, searched with the same
optimizers (Optuna's TPE / NSGA-II with pruning among them); importing this package registers the targets."""

from . import command, experiment_target  # noqa: F401  (register the targets)
from .config import build_tuner, load_tune_config, validate_tune
from .runner import Tuner
from .space import tune_space
from .target import TUNE_TARGETS, Pruned, TrialFailed, TrialRun, TuneTarget, run_trial

__all__ = ["TUNE_TARGETS", "Pruned", "TrialFailed", "TrialRun", "TuneTarget", "Tuner", "build_tuner",
           "load_tune_config", "run_trial", "tune_space", "validate_tune"]

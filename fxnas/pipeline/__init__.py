"""Pipelines: named steps (search, retrain, export, profile, tune, commands, nested pipelines) run in
dependency order, values passed between them, finished steps skipped on a rerun; importing this package
registers the built-in steps."""

from . import model_steps, other_steps, search_steps  # noqa: F401  (register the steps)
from .config import load_pipeline, validate_pipeline
from .runner import fingerprint, run_pipeline, run_step
from .step import PIPELINE_STEPS, Step, StepFailed, StepRun

__all__ = ["PIPELINE_STEPS", "Step", "StepFailed", "StepRun", "fingerprint", "load_pipeline", "run_pipeline",
           "run_step", "validate_pipeline"]

"""Pipeline steps: components of ``PIPELINE_STEPS``, each turning its options into named outputs.

A step's options come from the pipeline YAML and, for those listed under ``inputs:``, from the outputs of
earlier steps (``inputs: {arch: search.arch}``); the step is built through ``PIPELINE_STEPS.build`` once its
inputs are known, then ``run`` in its own folder. A step is rerun only when its options (inputs included,
and the contents of the files they name) changed, or an output file it made is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..registry import Registry

PIPELINE_STEPS = Registry("pipeline step")


class StepFailed(Exception):
    """A step could not produce its outputs (the message says why); its dependants do not run."""


@dataclass(frozen=True)
class StepRun:
    """Where a step runs: its name in the pipeline and its own folder (created before ``run``)."""

    name: str
    workdir: Path


class Step:
    """Base of pipeline steps::

        outputs                       the output names run() returns (None: known only once it runs); a
                                      pipeline's ``inputs:`` naming another output is refused up front
        run(ctx) -> {name: value}     do the work in ctx.workdir; plain data and paths (str) only
        files(outputs) -> [path]      the output files whose loss makes the step run again (default: every
                                      output that is a path inside the step's folder)
    """

    outputs: tuple[str, ...] | None = None

    def run(self, ctx: StepRun) -> dict[str, Any]:
        """Do the work; the outputs."""
        raise NotImplementedError

    def files(self, outputs: Mapping[str, Any], ctx: StepRun) -> list[str]:
        """The output files of a finished run (checked before the step is skipped on a rerun)."""
        root = str(ctx.workdir.resolve())
        return [v for v in outputs.values() if isinstance(v, str) and v.startswith(root) and Path(v).exists()]

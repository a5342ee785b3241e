"""Every component registry of fxnas, by kind. Importing this module imports every built-in component.

This is the one discovery mechanism of the package's own components: each package's ``__init__`` imports
its modules (whose decorators register their components), and this module imports those packages. User
components arrive the same way, by importing the user's module (``imports:`` in a config, ``--import`` on
the CLI). A new kind of component adds its registry here.
"""

from __future__ import annotations

from . import (  # noqa: F401  (fill the registries)
    candidates,
    elastic,
    estim,
    export,
    hardware,
    mixed,
    optim,
    passes,
    pipeline,
    profilers,
    spaces,
    train,
    tune,
)
from .candidates.registry import CANDIDATES
from .costs import COSTS
from .elastic.rules import CHANNEL_RULES
from .estim.base import ESTIMATORS
from .estim.table import BENCHMARKS
from .export.formats import EXPORT_FORMATS
from .hardware.loss import HW_CRITERIA
from .leaves import LEAF_RULES
from .mixed.base import MIXED_OPS
from .optim.base import OPTIMIZERS
from .passes.patterns import PATTERNS
from .pipeline.step import PIPELINE_STEPS
from .profilers.predictors import PREDICTORS
from .profilers.rules import COST_RULES
from .profilers.runtimes import RUNTIMES
from .registry import Registry
from .space import DERIVE_RULES
from .spaces.registry import SPACES
from .tracers import TRACERS
from .train.criteria import CRITERIA
from .train.datasets import DATASETS
from .train.trainer import TRAINERS
from .tune.target import TUNE_TARGETS

REGISTRIES: dict[str, Registry] = {r.kind: r for r in (
    PATTERNS, CANDIDATES, MIXED_OPS, SPACES, DERIVE_RULES, OPTIMIZERS, ESTIMATORS, BENCHMARKS, TRAINERS, CRITERIA,
    DATASETS, CHANNEL_RULES, COST_RULES, RUNTIMES, PREDICTORS, HW_CRITERIA, TUNE_TARGETS,
    PIPELINE_STEPS, COSTS, LEAF_RULES, TRACERS, EXPORT_FORMATS)}


def registries() -> dict[str, Registry]:
    """Every registry by kind (a copy: adding a kind is an edit of this module, not of the dict)."""
    return dict(REGISTRIES)

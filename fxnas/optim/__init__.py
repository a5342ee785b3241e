"""Search algorithms; importing this package registers them in OPTIMIZERS."""

from . import discrete, evolution, gradient, nsga2, optuna_search, smbo  # noqa: F401  (register the optimizers)
from .base import OPTIMIZERS, ArchStepContext, GradientOptimizer, Optimizer, Result, TrialPruner, arch_key
from .discrete import DiscreteOptimizer

__all__ = ["OPTIMIZERS", "ArchStepContext", "DiscreteOptimizer", "GradientOptimizer", "Optimizer", "Result",
           "TrialPruner", "arch_key"]

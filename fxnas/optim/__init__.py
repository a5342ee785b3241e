"""Search algorithms; importing this package registers them in OPTIMIZERS."""

from . import discrete, evolution, gradient, nsga2, smbo  # noqa: F401  (register the optimizers)
from .base import OPTIMIZERS, GradientOptimizer, Optimizer, Result, arch_key

__all__ = ["OPTIMIZERS", "GradientOptimizer", "Optimizer", "Result", "arch_key"]

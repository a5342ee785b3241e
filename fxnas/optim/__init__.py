"""Search algorithms; importing this package registers them in OPTIMIZERS."""

from .base import OPTIMIZERS, Optimizer, Result, arch_key

__all__ = ["OPTIMIZERS", "Optimizer", "Result", "arch_key"]

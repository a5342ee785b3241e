"""Estimation strategies; importing this package registers them in ESTIMATORS."""

from . import default, retrain, shrinking, subnet, supernet, table, unified, uniform  # noqa: F401  (register them)
from .base import ESTIMATORS, Estimator, SearchContext

__all__ = ["ESTIMATORS", "Estimator", "SearchContext"]

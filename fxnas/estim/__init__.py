"""Estimation strategies; importing this package registers them in ESTIMATORS."""

from . import default, retrain, subnet, supernet, table, unified, uniform  # noqa: F401  (register the estimators)
from .base import ESTIMATORS, Estimator, SearchContext

__all__ = ["ESTIMATORS", "Estimator", "SearchContext"]

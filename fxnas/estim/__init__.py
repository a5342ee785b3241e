"""Estimation strategies; importing this package registers them in ESTIMATORS."""

from .base import ESTIMATORS, Estimator

__all__ = ["ESTIMATORS", "Estimator"]

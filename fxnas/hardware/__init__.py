"""Hardware-aware search building blocks: latency/cost losses for gradient methods, metric providers for
discrete search."""

from .loss import HW_CRITERIA, ExpectedMetric, HardwareCriterion, HardwareLoss, chain_gradients
from .metrics import METRIC_PROVIDERS, LatencyMetric, MetricProvider, StaticMetrics

__all__ = ["HW_CRITERIA", "METRIC_PROVIDERS", "ExpectedMetric", "HardwareCriterion", "HardwareLoss",
           "LatencyMetric", "MetricProvider", "StaticMetrics", "chain_gradients"]

"""Hardware-aware search building blocks: the latency/cost losses of gradient methods and the ``latency_ms``
cost metric (measured or predicted) of discrete and Pareto search."""

from .latency_cost import LatencyMetric
from .loss import HW_CRITERIA, ExpectedMetric, HardwareCriterion, HardwareLoss, chain_gradients

__all__ = ["HW_CRITERIA", "ExpectedMetric", "HardwareCriterion", "HardwareLoss", "LatencyMetric",
           "chain_gradients"]

"""``latency_ms``, a cost metric (``fxnas.costs.COSTS``): an arch's latency measured on a runtime or predicted.

Any estimator's ``costs`` option and the discrete and Pareto searches' objectives (``min:latency_ms``) and
constraints (``latency_ms <= 5``) take it like ``params`` or ``macs``::

    costs: [macs, {type: latency_ms, source: predicted, predictor: table, calibrate: 8}]
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.fx as fx

from ..costs import COSTS
from ..errors import ConfigError
from ..supernet import space_of

SOURCES = ("measured", "predicted")
PREDICTOR_NAMES = ("table", "xgboost")


@COSTS.register("latency_ms")
class LatencyMetric:
    """``latency_ms`` of an arch at batch 1 (the supernet's traced input shapes).

    ``source: measured`` materialises the subnet and times it on ``runtime`` (each distinct subnet once per
    machine with the cache); ``source: predicted`` uses ``predictor``: ``table`` (the latency table's sum, its
    overhead fitted on ``calibrate`` measured random subnets when > 0) or ``xgboost`` (fitted on ``train``
    measured random subnets, on the space's one-hot features plus, with ``static_features``, the subnet's
    static counts). ``runtime_options`` go to the runtime (``threads``, ``provider``, ``device``).
    """

    names = ("latency_ms",)

    def __init__(self, supernet: fx.GraphModule, source: Literal["measured", "predicted"] = "predicted",
                 predictor: Literal["table", "xgboost"] = "table", runtime: str = "onnxruntime",
                 runtime_options: Mapping[str, Any] | None = None, cache: Any = True, repeats: int = 30,
                 warmup: int = 5, calibrate: int = 0, train: int = 50, static_features: bool = True,
                 seed: int = 0) -> None:
        from ..profilers.latency import LatencyProfiler, latency_tree
        from ..profilers.predictors import StaticFeatures, TablePredictor, XGBoostPredictor

        if source not in SOURCES:
            raise ConfigError(f"latency source must be one of {list(SOURCES)}, got {source!r}")
        if predictor not in PREDICTOR_NAMES:
            raise ConfigError(f"latency predictor must be one of {list(PREDICTOR_NAMES)}, got {predictor!r}")
        self.supernet, self.space, self.source = supernet, space_of(supernet), source
        self.profiler = LatencyProfiler(runtime, cache, repeats, warmup, **dict(runtime_options or {}))
        from ..profilers.tree import batch_one_inputs

        self.inputs = tuple(torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
                            for x in batch_one_inputs(supernet))
        self.predictor: Any = None
        if source == "predicted":
            rng = random.Random(seed)
            n = int(calibrate) if predictor == "table" else int(train)
            archs = [self.space.sample(rng) for _ in range(n)]
            if predictor == "table":
                self.predictor = TablePredictor(latency_tree(supernet, self.profiler), self.space)
                if archs:
                    self.predictor.fit(archs, [self.measure(a) for a in archs])
            else:
                if n < 2:
                    raise ConfigError(f"the xgboost latency predictor needs train >= 2 measured subnets, got {n}")
                extra = None
                if static_features:
                    from ..profilers.graph_cost import GraphCost

                    extra = StaticFeatures(GraphCost(supernet))
                self.predictor = XGBoostPredictor(self.space, extra=extra, seed=seed).fit(
                    archs, [self.measure(a) for a in archs])

    def measure(self, arch: Mapping[str, Any]) -> float:
        """The measured latency (ms, the profiler's statistic) of ``arch``'s materialised subnet."""
        from ..passes.materialize import materialize

        sub = materialize(self.supernet, {**self.space.current(), **self.space.validate(arch)}).eval()
        return self.profiler.value(self.profiler.measure(sub, self.inputs))

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """``{"latency_ms": ...}`` of ``arch``: measured, or the predictor's value."""
        if self.source == "measured":
            return {"latency_ms": self.measure(arch)}
        return {"latency_ms": float(self.predictor.predict(arch))}


__all__ = ["LatencyMetric"]

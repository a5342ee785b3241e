"""Metric providers for discrete and Pareto search: costs of an arch without training it.

``METRIC_PROVIDERS`` holds ``static`` (params, MACs, bytes from the supernet's cost tree) and ``latency``
(``latency_ms``: measured on a runtime, or predicted by the latency table or an XGBoost predictor). A provider
is a callable ``arch -> {metric: value}``; an estimator merges its values into each result's metrics, so
objectives (``min:latency_ms``) and constraints (``latency_ms <= 5``) can use them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.fx as fx

from ..errors import ConfigError
from ..registry import Registry
from ..supernet import space_of

METRIC_PROVIDERS = Registry("metric provider")


class MetricProvider:
    """Base: ``provider(arch)`` gives the metrics named in ``names`` for one arch."""

    names: tuple[str, ...] = ()

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        raise NotImplementedError


@METRIC_PROVIDERS.register("static")
class StaticMetrics(MetricProvider):
    """Static counts per sample of the arch's subnet, from the supernet's cost tree (``GraphCost``).

    Any of params, flops (= MACs, the NAS convention), macs, profile_flops, read_bytes, write_bytes.
    """

    VALID = ("params", "flops", "macs", "profile_flops", "read_bytes", "write_bytes")

    def __init__(self, supernet: fx.GraphModule, metrics: Sequence[str] = ("params", "flops")) -> None:
        from ..profilers.graph_cost import GraphCost

        bad = [m for m in metrics if m not in self.VALID]
        if bad or not metrics:
            raise ConfigError(f"static metrics {bad or list(metrics)} are not countable; valid: {list(self.VALID)}")
        self.names = tuple(metrics)
        self.cost = GraphCost(supernet)

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        got = self.cost(arch)
        return {k: got[k] for k in self.names}


SOURCES = ("measured", "predicted")
PREDICTOR_NAMES = ("table", "xgboost")


@METRIC_PROVIDERS.register("latency")
class LatencyMetric(MetricProvider):
    """``latency_ms`` of an arch at batch 1 (the supernet's traced input shapes).

    ``source: measured`` materialises the subnet and times it on ``runtime`` (each distinct subnet once per
    machine with the cache); ``source: predicted`` uses ``predictor``: ``table`` (the latency table's sum, its
    overhead fitted on ``calibrate`` measured random subnets when > 0) or ``xgboost`` (fitted on ``train``
    measured random subnets, on the space's one-hot features plus, with ``static_features``, the subnet's
    static counts). ``runtime_options`` go to the runtime (``threads``, ``provider``, ``device``).
    """

    names = ("latency_ms",)

    def __init__(self, supernet: fx.GraphModule, source: str = "predicted", predictor: str = "table",
                 runtime: str = "onnxruntime", runtime_options: Mapping[str, Any] | None = None,
                 cache: Any = True, repeats: int = 30, warmup: int = 5, calibrate: int = 0, train: int = 50,
                 static_features: bool = True, seed: int = 0) -> None:
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
        if self.source == "measured":
            return {"latency_ms": self.measure(arch)}
        return {"latency_ms": float(self.predictor.predict(arch))}


def build_provider(supernet: fx.GraphModule, spec: Mapping[str, Any]) -> MetricProvider:
    """A provider from ``{type: static | latency, **options}`` (what a config's metrics list will hold)."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"a metric provider needs a type ({', '.join(METRIC_PROVIDERS.names())}); got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "type"}
    cls = METRIC_PROVIDERS.get(str(spec["type"]))
    try:
        return cls(supernet, **options)
    except TypeError as exc:
        raise ConfigError(f"metric provider {spec['type']!r}: {exc}") from None

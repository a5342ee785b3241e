"""Metric providers for discrete search: static counts, latency measured or predicted, constraints on them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fxnas
from fxnas.errors import ConfigError, RegistryError
from fxnas.hardware.metrics import LatencyMetric, StaticMetrics, build_provider
from fxnas.modelfile import load_model
from fxnas.objectives import parse_constraint
from fxnas.profilers.graph_cost import GraphCost

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return fxnas.searchify(load_model(TINY), "conv3x3", ["NC3", "DW3", "IDT"], torch.randn(2, 3, 16, 16))


def test_static_metrics_are_the_graph_cost(supernet) -> None:
    p = build_provider(supernet, {"type": "static", "metrics": ["params", "macs", "write_bytes"]})
    arch = supernet.space.sample(2)
    want = GraphCost(supernet)(arch)
    assert isinstance(p, StaticMetrics) and p(arch) == {k: want[k] for k in ("params", "macs", "write_bytes")}
    with pytest.raises(ConfigError, match="not countable; valid"):
        StaticMetrics(supernet, ["latency"])


def test_measured_latency_is_cached_and_feeds_constraints(supernet, tmp_path: Path) -> None:
    cache = tmp_path / "latency.sqlite"
    m = LatencyMetric(supernet, source="measured", cache=cache, repeats=3, warmup=1)
    light = {k: "IDT" for k in supernet.space.discrete()}
    heavy = {k: "NC3" for k in supernet.space.discrete()}
    a, b = m(light)["latency_ms"], m(heavy)["latency_ms"]
    assert 0 < a and 0 < b and m.profiler.measured == 2
    again = LatencyMetric(supernet, source="measured", cache=cache, repeats=3, warmup=1)
    assert again(light)["latency_ms"] == a and again.profiler.measured == 0  # the same subnet: from the cache
    c = parse_constraint(f"latency_ms <= {max(a, b) * 10:g}")
    assert c.violation(m(light)) == 0


def test_predicted_latency_from_the_table(supernet, tmp_path: Path) -> None:
    m = LatencyMetric(supernet, source="predicted", predictor="table", cache=tmp_path / "c.sqlite", repeats=3,
                      warmup=1, calibrate=2)
    light = {k: "IDT" for k in supernet.space.discrete()}
    heavy = {k: "NC3" for k in supernet.space.discrete()}
    assert m(light)["latency_ms"] < m(heavy)["latency_ms"]
    assert m.predictor.overhead != 0.0  # fitted on the two calibration subnets


def test_bad_provider_specs(supernet) -> None:
    with pytest.raises(ConfigError, match="source must be one of"):
        LatencyMetric(supernet, source="guessed")
    with pytest.raises(ConfigError, match="predictor must be one of"):
        LatencyMetric(supernet, predictor="lut")
    with pytest.raises(ConfigError, match="train >= 2"):
        LatencyMetric(supernet, predictor="xgboost", train=1, cache=None)
    with pytest.raises(RegistryError, match="did you mean latency"):
        build_provider(supernet, {"type": "latncy"})
    with pytest.raises(ConfigError, match="needs a type"):
        build_provider(supernet, {"metrics": ["params"]})
    with pytest.raises(ConfigError, match="unexpected keyword"):
        build_provider(supernet, {"type": "static", "metric": ["params"]})

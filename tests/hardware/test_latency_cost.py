"""latency_ms as a cost metric: measured or predicted, options checked by COSTS, constraints on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fxnas
from fxnas.config import validate
from fxnas.costs import ArchCosts, check_costs
from fxnas.errors import ConfigError
from fxnas.hardware.latency_cost import LatencyMetric
from fxnas.modelfile import load_model
from fxnas.objectives import parse_constraint
from fxnas.profilers.graph_cost import GraphCost

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return fxnas.searchify(load_model(TINY), "conv3x3", ["NC3", "DW3", "IDT"], torch.randn(2, 3, 16, 16))


def test_memory_costs_are_the_graph_cost(supernet) -> None:
    costs = ArchCosts(supernet, ["params", "read_bytes", "write_bytes", "profile_flops"])
    arch = supernet.space.sample(2)
    want = GraphCost(supernet)(arch)
    assert costs(arch) == {k: want[k] for k in ("params", "read_bytes", "write_bytes", "profile_flops")}


def test_measured_latency_is_cached_and_feeds_constraints(supernet, tmp_path: Path) -> None:
    cache = str(tmp_path / "latency.sqlite")
    spec = {"type": "latency_ms", "source": "measured", "cache": cache, "repeats": 3, "warmup": 1}
    costs = ArchCosts(supernet, ["macs", spec])
    light = {k: "IDT" for k in supernet.space.discrete()}
    heavy = {k: "NC3" for k in supernet.space.discrete()}
    a, b = costs(light), costs(heavy)
    assert list(a) == ["macs", "latency_ms"] and a["macs"] < b["macs"]
    assert 0 < a["latency_ms"] and 0 < b["latency_ms"]
    metric = costs.counters["latency_ms"]
    assert isinstance(metric, LatencyMetric) and metric.profiler.measured == 2
    again = ArchCosts(supernet, [spec])
    assert again(light)["latency_ms"] == a["latency_ms"]  # the same subnet: from the cache
    assert again.counters["latency_ms"].profiler.measured == 0
    c = parse_constraint(f"latency_ms <= {max(a['latency_ms'], b['latency_ms']) * 10:g}")
    assert c.violation(a) == 0


def test_predicted_latency_from_the_table(supernet, tmp_path: Path) -> None:
    m = LatencyMetric(supernet, source="predicted", predictor="table", cache=tmp_path / "c.sqlite", repeats=3,
                      warmup=1, calibrate=2)
    light = {k: "IDT" for k in supernet.space.discrete()}
    heavy = {k: "NC3" for k in supernet.space.discrete()}
    assert m(light)["latency_ms"] < m(heavy)["latency_ms"]
    assert m.predictor.overhead != 0.0  # fitted on the two calibration subnets


def test_bad_latency_specs(supernet) -> None:
    with pytest.raises(ConfigError, match=r"costs\[0\]\.source: 'guessed' is not one of"):
        check_costs([{"type": "latency_ms", "source": "guessed"}])
    with pytest.raises(ConfigError, match="no option 'repeat'; did you mean repeats"):
        check_costs([{"type": "latency_ms", "repeat": 3}])
    with pytest.raises(ConfigError, match="did you mean latency_ms"):
        check_costs(["latency_m"])
    with pytest.raises(ConfigError, match="lists 'latency_ms' twice"):
        check_costs(["latency_ms", {"type": "latency_ms", "source": "measured"}])
    with pytest.raises(ConfigError, match="metric provider is now cost metrics"):
        check_costs([{"type": "static", "metrics": ["params"]}])
    with pytest.raises(ConfigError, match="train >= 2"):
        LatencyMetric(supernet, predictor="xgboost", train=1, cache=None)


def test_an_old_metrics_section_points_to_costs() -> None:
    with pytest.raises(ConfigError, match="'metrics' section is gone.*costs"):
        validate({"name": "x", "model": {"type": "tiny_net"}, "optim": {"type": "Random"},
                         "estim": [{"type": "Uniform"}], "metrics": [{"type": "latency"}]})

"""fxnas.costs: cost metrics of archs counted from the supernet (elastic or mixed-op), registry-extensible."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import fxnas
from fxnas.costs import COSTS, ArchCosts, CostOption, check_costs, weightless_copy
from fxnas.errors import ConfigError
from fxnas.examples.tiny_net import build as tiny_net
from fxnas.objectives import GraphCost


@pytest.fixture(scope="module")
def elastic_net():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 16)
    return fxnas.elasticize(tiny_net(width=8).eval(), x, width=(0.5, 1.0), kernel=(3, 5), depth=(0, 1),
                            kernel_layers="all"), x


def test_elastic_costs_equal_the_materialised_subnet(elastic_net) -> None:
    """params and macs of sampled settings equal the materialised subnet's parameter count and profiled MACs;
    flops is the same count as macs; the live supernet's arch is left alone."""
    net, x = elastic_net
    costs = ArchCosts(net, ["params", "macs", "flops"])
    before = net.space.current()
    seen = set()
    for seed in range(4):
        arch = net.space.sample(seed)
        c = costs(arch)
        sub = fxnas.materialize(net, arch)
        assert list(c) == ["params", "macs", "flops"]
        assert c["params"] == sum(p.numel() for p in sub.parameters())
        assert c["macs"] == c["flops"] == fxnas.profile(sub, x)["macs"]
        seen.add(c["macs"])
    assert len(seen) > 1
    assert net.space.current() == before


def test_mixed_op_costs_are_graph_costs() -> None:
    """On a searchify supernet the counts are GraphCost's (macs named as well as flops)."""
    x = torch.randn(1, 3, 16, 16)
    sn = fxnas.searchify(tiny_net(width=8), "conv3x3", ["NC3", "DW3", "IDT"], x)
    arch = sn.space.sample(1)
    want = GraphCost(sn)(arch)
    assert ArchCosts(sn, ["macs", "params"])(arch) == {"macs": want["flops"], "params": want["params"]}


def test_unknown_or_repeated_metrics_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"SubNet costs\[0\]: unknown cost metric 'mac'; did you mean macs"):
        check_costs(["mac"], "SubNet costs")
    with pytest.raises(ConfigError, match="twice"):
        check_costs(["params", "params"])
    with pytest.raises(ConfigError, match="a list of metric names"):
        check_costs("params")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown cost metric"):
        fxnas.estim.ESTIMATORS.build("Uniform", costs=["energy_mj"])


def test_arch_costs_pickle_without_the_supernet(elastic_net) -> None:
    """A pickled ArchCosts (what dask ships) counts the same and holds no real weights."""
    net, _ = elastic_net
    costs = ArchCosts(net, ["params", "macs"])
    arch = net.space.sample(5)
    copy = pickle.loads(pickle.dumps(costs))
    assert copy.supernet is None and copy(arch) == costs(arch)
    meta = weightless_copy(net)
    assert all(p.is_meta for p in meta.parameters()) and not any(p.is_meta for p in net.parameters())


def test_a_registered_metric_reaches_every_estimator_option(elastic_net) -> None:
    """A new cost metric (as a latency table would be) plugs in by registering a builder; a builder serving
    several names is built once and counted once per arch."""
    net, _ = elastic_net
    built, counted = [], []

    def width_sum(supernet: nn.Module):
        """The sum of the width choices (a stand-in cost)."""
        built.append(supernet)

        def count(arch):
            counted.append(arch)
            total = float(sum(v for k, v in arch.items() if k.startswith("width.")))
            return {"width_sum": total, "width_sum2": 2 * total}

        return count

    with COSTS.scoped():
        COSTS.register("width_sum", obj=width_sum)
        COSTS.register("width_sum2", obj=width_sum)
        option = CostOption(["width_sum", "width_sum2", "params"], "test")
        arch = net.space.sample(2)
        got = option(net, arch)
        assert got["width_sum2"] == 2 * got["width_sum"] == 2 * sum(v for k, v in arch.items() if "width" in k)
        option(net, net.space.sample(3))
        assert len(built) == 1 and len(counted) == 2
        assert "width_sum" in fxnas.estim.ESTIMATORS.build("SubNet", costs=["width_sum"]).metric_names(
            _Ctx())
    assert "width_sum" not in COSTS


class _Ctx:
    trainer = fxnas.train.TRAINERS.build("Classification")

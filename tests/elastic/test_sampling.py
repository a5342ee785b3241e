"""fxnas.elastic.sampling: the settings progressive shrinking trains per step."""

from __future__ import annotations

import pytest
import torch

import fxnas
from fxnas.elastic import elastic_params
from fxnas.elastic.sampling import STAGES, is_largest, step_subnets, subnet, unlocked_kinds
from fxnas.errors import ConfigError
from fxnas.examples.tiny_net import build as tiny_net


@pytest.fixture(scope="module")
def space():
    x = torch.randn(1, 3, 16, 16)
    sup = fxnas.searchify(tiny_net(width=8).eval(), "conv3x3", ["ORIG", "DW3"], x)
    return fxnas.elasticize(sup, x, width=(0.5, 1.0), kernel=(3, 5), depth=(0, 1), kernel_layers="all").space


def test_stages_unlock_kinds_in_order() -> None:
    assert STAGES == ("full", "kernel", "depth", "width")
    assert unlocked_kinds(list(STAGES), 0) == set()
    assert unlocked_kinds(list(STAGES), 2) == {"kernel", "depth"}
    assert unlocked_kinds(["full", "width", "kernel"], 1) == {"width"}


def test_subnets_vary_only_the_unlocked_kinds(space) -> None:
    """Locked elastic kinds stay at their largest; sandwich steps start with the largest and the smallest;
    op choices (not elastic) are sampled; the same key draws the same settings."""
    el = elastic_params(space)
    ops = [k for k in space.discrete() if k not in el]
    assert ops and {p.kind for p in el.values()} == {"width", "kernel", "depth"}
    archs = step_subnets(space, {"kernel"}, 5, True, 0, "ps", 1, 2)
    assert len(archs) == 5 and is_largest(space, archs[0])
    assert all(archs[1][k] == (p.choices[0] if p.kind == "kernel" else p.choices[-1]) for k, p in el.items())
    for a in archs:
        assert space.validate(a, complete=True) == a
        assert all(a[k] == p.choices[-1] for k, p in el.items() if p.kind != "kernel")
    many = [a for s in range(20) for a in step_subnets(space, {"kernel", "width"}, 3, False, 0, "k", s)]
    assert len({a[k] for a in many for k, p in el.items() if p.kind == "width"}) > 1
    assert all(a[k] == p.choices[-1] for a in many for k, p in el.items() if p.kind == "depth")
    assert len({tuple(a[k] for k in ops) for a in many}) > 1
    assert step_subnets(space, {"kernel"}, 5, True, 0, "ps", 1, 2) == archs
    assert step_subnets(space, {"kernel"}, 5, True, 0, "ps", 1, 3) != archs
    full = step_subnets(space, set(), 4, True, 0, "ps", 0, 0)
    assert len(full) == 1 and is_largest(space, full[0])


def test_subnet_kind_is_checked(space) -> None:
    import random

    with pytest.raises(ConfigError, match="largest, smallest or random|one of"):
        subnet(space, {"width"}, "biggest", random.Random(0))

"""The NB201 model and the space fxnas's passes make from it: structure, shared edge params, cell semantics."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import assert_close, randomize_bn
from torch import nn

from fxnas import materialize, mixed_ops, searchify
from fxnas.candidates import CANDIDATES
from fxnas.errors import ConfigError
from fxnas.slot import SlotSpec
from fxnas.spaces.nb201 import (
    EDGE_PARAMS,
    NB201_CANDIDATES,
    Cell,
    Edge,
    NB201Net,
    nb201_space,
    nb201_supernet,
    str_to_arch,
)
from fxnas.spaces.nb201.model import edge_param


@pytest.fixture(scope="module")
def supernet():
    return nb201_supernet(check=True)  # once with the shape check of every candidate on every slot


def test_plain_model_structure():
    net = NB201Net()
    assert sum(isinstance(m, Cell) for m in net.modules()) == 15
    assert sum(isinstance(m, Edge) for m in net.modules()) == 90
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert NB201Net(num_classes=100)(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_supernet_space_shares_six_edge_params(supernet):
    space = supernet.space
    assert list(space) == list(EDGE_PARAMS)
    assert space.describe() == nb201_space().describe()
    assert space.size() == 5 ** 6
    ops = mixed_ops(supernet)
    assert len(ops) == 90
    assert {op.param.name for op in ops.values()} == set(EDGE_PARAMS)
    assert all(op.names == list(NB201_CANDIDATES) for op in ops.values())


def test_supernet_with_original_ops_computes_the_plain_model():
    model = randomize_bn(NB201Net())
    x = torch.randn(2, 3, 32, 32)
    net = searchify(model, pattern=Edge, candidates=list(NB201_CANDIDATES), example_inputs=x,
                    param_name=edge_param, check=False)
    for path, op in mixed_ops(net).items():  # copy each original edge's ReLU-Conv-BN into its RCB3 candidate
        op.candidates["RCB3"].load_state_dict(model.get_submodule(path).op.state_dict())
    net.space.apply({k: "RCB3" for k in EDGE_PARAMS})
    with torch.no_grad():
        assert_close(net.eval()(x), model.eval()(x))


def _cell_net(arch_str: str) -> tuple[nn.Module, torch.Tensor]:
    x = torch.randn(2, 8, 6, 6)
    net = searchify(Cell(8), pattern=Edge, candidates=list(NB201_CANDIDATES), example_inputs=x, param_name=edge_param)
    net.space.apply(str_to_arch(arch_str))
    return net.eval(), x


@pytest.mark.parametrize("arch_str,factor", [
    ("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|", 1.0),
    ("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|", 2.0),
    ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|", 4.0),
    ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|none~2|", 0.0),
])
def test_cell_wiring_follows_the_nb201_string(arch_str, factor):
    net, x = _cell_net(arch_str)
    torch.testing.assert_close(net(x), factor * x)


def test_avg_pool_candidate_excludes_padding():
    spec = SlotSpec(8, 8, 1, in_shape=(1, 8, 4, 4), out_shape=(1, 8, 4, 4))
    pool = CANDIDATES.get("AVG3P")(spec)
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 8, 4, 4)
    y = pool(x)
    assert y[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 4)  # corner: mean of the 4 real pixels
    rcb = CANDIDATES.get("RCB1")(spec)
    assert [type(m) for m in rcb] == [nn.ReLU, nn.Conv2d, nn.BatchNorm2d] and rcb[1].kernel_size == (1, 1)


def test_materialised_subnet_matches_supernet(supernet):
    arch = nb201_space().sample(random.Random(1))
    randomize_bn(supernet)
    x = torch.randn(2, 3, 32, 32)
    supernet.space.apply(arch)
    sub = materialize(supernet, arch)
    assert not mixed_ops(sub)
    with torch.no_grad():
        assert_close(sub.eval()(x), supernet.eval()(x))


def test_input_channels_and_shape_come_from_the_arguments():
    assert NB201Net(in_channels=1)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    sn = nb201_supernet(channels=4, cells_per_stage=1, input_shape=(1, 1, 16, 16), check=False)
    assert sn(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    with pytest.raises(ConfigError, match="in_channels=3"):
        nb201_supernet(channels=4, cells_per_stage=1, in_channels=3, input_shape=(1, 1, 16, 16))


def test_config_supernet_on_one_channel_data(tmp_path):
    from fxnas.config import build_experiment, load_config

    cfg = load_config({"name": "x", "model": {"type": "nb201", "supernet": True, "channels": 4, "cells_per_stage": 1},
                       "data": {"type": "digits", "size": 16, "batch_size": 8}, "optim": {"type": "Random"},
                       "estim": [{"type": "Uniform", "budget": 1}]}, out_root=str(tmp_path))
    exp = build_experiment(cfg, progress=False)
    assert exp.data.input_shape[1] == 1 and exp.data.num_classes == 10
    assert exp.model(exp.data.example_input()).shape[-1] == 10  # the stem takes the data's one channel
    assert list(exp.space) == list(EDGE_PARAMS)


def test_nb201_is_a_registered_space_without_importing_config():
    import subprocess
    import sys

    code = ("import sys; from fxnas.spaces.registry import SPACES; import fxnas.spaces.nb201.model as m; "
            "assert SPACES.get('nb201') is m.build_nb201; assert 'fxnas.config' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

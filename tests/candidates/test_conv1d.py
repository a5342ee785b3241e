"""1-D conv nets search too: conv1d patterns, NC/DW/MB/IDT candidates over NCL slots, a search from YAML."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close, randomize_bn
from torch import nn

import fxnas
from fxnas.candidates.registry import build_candidate
from fxnas.config import build_experiment, load_config
from fxnas.errors import ShapeError
from fxnas.slot import SlotSpec

CANDS = ["ORIG", "NC3", "NC5", "DW3", "MB3E3", "IDT"]

SEQ_NET = '''
import torch
from torch import nn


class SeqNet(nn.Module):
    """A small 1-D conv classifier with a residual add, as a user would write it."""

    def __init__(self, in_channels: int = 2, num_classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv1d(in_channels, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.c1 = nn.Conv1d(8, 8, 3, padding=1)
        self.c2 = nn.Conv1d(8, 16, 3, stride=2, padding=1)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = x + torch.relu(self.c1(x))
        return self.head(torch.relu(self.c2(x)).mean(-1))


def build(in_channels: int = 2, num_classes: int = 3) -> nn.Module:
    return SeqNet(in_channels, num_classes)
'''


@pytest.fixture
def seqnet(tmp_path):
    path = tmp_path / "seqnet.py"
    path.write_text(SEQ_NET)
    return path


def load(path):
    from fxnas.modelfile import load_model

    return load_model(str(path))


@pytest.mark.parametrize("name", ["NC3", "NC7", "DW5", "MB3E6", "IDT"])
@pytest.mark.parametrize("cin,cout,stride", [(8, 8, 1), (8, 16, 2)])
def test_candidates_build_1d_ops_of_the_slot_shape(name, cin, cout, stride) -> None:
    spec = SlotSpec(cin, cout, stride, 3, in_shape=(2, cin, 20), out_shape=(2, cout, math.ceil(20 / stride)))
    m = build_candidate(name, spec).eval()
    assert not [c for c in m.modules() if isinstance(c, (nn.Conv2d, nn.BatchNorm2d))]
    assert tuple(m(torch.randn(spec.in_shape)).shape) == spec.out_shape


def test_2d_only_candidates_say_what_they_need() -> None:
    spec = SlotSpec(8, 8, 1, 3, in_shape=(2, 8, 20), out_shape=(2, 8, 20), name="c1")
    with pytest.raises(ShapeError, match="SEP3 needs a 4-D NCHW slot.*'c1'"):
        build_candidate("SEP3", spec)


def test_orig_equals_model_and_sampled_subnet_equals_supernet(seqnet) -> None:
    model = randomize_bn(load(seqnet)).eval()
    x = torch.randn(4, 2, 32)
    sn = fxnas.searchify(model, "conv1d", CANDS, x[:1])
    assert list(sn.space.discrete()) == ["stem", "c1", "c2"]
    sub = fxnas.materialize(sn, {k: "ORIG" for k in sn.space.discrete()}).eval()
    assert_close(sub(x), model(x))
    randomize_bn(sn).eval()
    for seed in range(3):
        arch = sn.space.sample(seed)
        sn.space.apply(arch)
        assert_close(fxnas.materialize(sn, arch).eval()(x), sn(x))


def test_a_1d_conv_net_searches_from_yaml(seqnet, tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    n, length = 600, 32
    y = torch.randint(0, 3, (n,), generator=g)
    t = torch.arange(length).float()
    freq = (y.float() + 1).unsqueeze(1) * 2 * math.pi / 16  # the class is the frequency of a sine
    x = torch.stack([torch.sin(freq * t), torch.cos(freq * t)], 1) + 0.3 * torch.randn(n, 2, length, generator=g)
    torch.save({"X": x, "y": y}, tmp_path / "seq.pt")
    cfg = load_config({
        "name": "seq", "seed": 0, "progress": False, "out_root": str(tmp_path),
        "model": {"type": f"{seqnet}:build"},
        "construct": {"pattern": "conv1d", "candidates": ["NC3", "DW3", "MB3E3", "IDT"], "mixed_op": "BinaryGate"},
        "data": {"type": "tensors", "path": str(tmp_path / "seq.pt"), "batch_size": 16},
        "trainer": {"type": "Classification", "epochs": 5, "lr": 0.1},
        "optim": {"type": "BinaryGate"},
        "estim": [{"type": "SuperNet", "arch_update_intv": 1}],
        "export": {"onnx": True},
    })
    summary = build_experiment(cfg).run()
    assert set(summary["arch"]) == {"stem", "c1", "c2"}
    assert summary["metrics"]["acc"] > 60.0  # 3 classes: chance is 33%
    assert (tmp_path / "seq" / "subnet.onnx").exists()

"""Static profile: params, MACs/FLOPs by op kind, activation bytes; checked by hand and on known models."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

import fxnas
from fxnas.modelfile import load_model
from fxnas.profilers.static import profile

TINY = fxnas.__file__.replace("__init__.py", "examples/tiny_net.py")


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)  # bias: +1 FLOP per output
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = self.bn(self.dw(y)) + y  # 512 adds
        y = torch.relu(y) * 2.0  # 512 activations, 512 muls
        y = self.pool(y)  # 128 outputs x 4 reads
        z = y.flatten(1)
        return self.fc(z) + (z @ torch.ones(128, 5))  # matmul: 5 outputs x 128


def test_hand_counted_small_net() -> None:
    r = profile(Small(), torch.randn(1, 3, 8, 8))
    conv = 8 * 8 * 8 * 27
    dw = 8 * 8 * 8 * 9
    assert r["macs_by_kind"] == {"conv": conv + dw, "linear": 5 * 128, "matmul": 5 * 128}
    f = r["flops_by_kind"]
    assert f["conv"] == 2 * (conv + dw) + 512
    assert f["norm"] == 2 * 512 and f["pool"] == 128 * 4 and f["activation"] == 512
    assert f["elementwise"] == 512 + 512 + 5
    assert f["linear"] == 2 * 5 * 128 + 5 and f["matmul"] == 2 * 5 * 128
    assert r["macs"] == sum(r["macs_by_kind"].values()) and r["flops"] == sum(f.values())
    assert r["params"] == r["total_params"] == sum(p.numel() for p in Small().parameters())
    assert r["input_bytes"] == 3 * 64 * 4
    assert r["activation_bytes"] > r["peak_activation_bytes"] > 0
    # the conv, dw, bn and add outputs (512 floats each) are the largest tensors; at most three live at once
    assert r["peak_activation_bytes"] <= 3 * 512 * 4 + 128 * 4


def test_known_models() -> None:
    r = profile(torchvision.models.resnet18().eval(), torch.randn(1, 3, 224, 224))
    assert abs(r["macs"] / 1.814e9 - 1) < 0.01  # the usual 1.8 GMACs
    assert r["params"] == 11689512
    r = profile(torchvision.models.mobilenet_v2().eval(), torch.randn(1, 3, 224, 224))
    assert abs(r["macs"] / 300.8e6 - 1) < 0.01 and r["params"] == 3504872


def test_supernet_profile_follows_the_arch() -> None:
    m = load_model(TINY).eval()
    x = torch.randn(1, 3, 32, 32)
    net = fxnas.searchify(m, "conv3x3", ["ORIG", "MB5E6", "IDT"], example_inputs=x).eval()
    arch = net.space.sample(3)
    net.space.apply(arch)
    sub = fxnas.materialize(net, arch)
    a, b = profile(net, x), profile(sub, x)
    for k in ("params", "macs", "flops", "activation_bytes"):
        assert a[k] == b[k], k
    assert a["total_params"] > a["params"]  # the unchosen candidates
    orig = profile(m, x)
    net.space.apply({k: "ORIG" for k in net.space})
    assert profile(net, x)["macs"] == orig["macs"]
    assert fxnas.profile is profile

"""Block patterns by structure: residual and inverted-residual blocks of any library (or the user's own)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import fxnas
from fxnas.passes.blocks import is_inverted_residual, is_residual_block
from fxnas.passes.materialize import materialize
from fxnas.passes.patterns import resolve_pattern


def matched(model: nn.Module, pattern: str, x: torch.Tensor) -> list[str]:
    pat = resolve_pattern(pattern)
    gm = fxnas.trace(model, x, leaf_predicate=pat.keeps_whole, selects=pat.selects)
    return [n.target for n in gm.graph.nodes if pat.matches(gm, n)]


class MyBlock(nn.Module):
    """A user's residual block: no torchvision class, a shortcut conv, the add written as torch.add."""

    def __init__(self, c: int, stride: int = 1) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, stride, 1), nn.Conv2d(c, c, 3, 1, 1)
        self.short = nn.Conv2d(c, c, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.add(self.b(torch.relu(self.a(x))), self.short(x)))


class Plain(nn.Module):
    """Two convs and no shortcut: not a residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) * 2


def test_structure_checks() -> None:
    assert is_residual_block(MyBlock(4)) and not is_residual_block(Plain())
    assert not is_residual_block(nn.Sequential(MyBlock(4), MyBlock(4)))  # a stage: its shortcut holds convs
    ir = nn.Sequential(nn.Conv2d(4, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 4, 1))
    assert is_inverted_residual(ir)
    assert not is_inverted_residual(nn.Sequential(ir, copy.deepcopy(ir))) and not is_inverted_residual(ir[1])
    assert not is_inverted_residual(nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 4, 3)))


def test_user_blocks_are_matched_outermost_and_kept_whole() -> None:
    model, x = nn.Sequential(nn.Conv2d(3, 4, 3), MyBlock(4), nn.Sequential(MyBlock(4, 2)), Plain()).eval(), \
        torch.randn(1, 3, 16, 16)
    assert matched(model, "resnet_block", x) == ["1", "2.0"]  # a one-child wrapper defers to its child
    net = fxnas.searchify(model, "resnet_block", ["ORIG"], example_inputs=x)
    with torch.no_grad():
        torch.testing.assert_close(materialize(net, {})(x), model(x))


@pytest.mark.parametrize("name, pattern, n", [
    ("resnet18", "resnet_block", 8),
    pytest.param("seresnext26d_32x4d", "resnet_block", 8, marks=pytest.mark.slow),
    ("mobilenetv3_small_100", "inverted_residual", 11), ("efficientnet_b0", "inverted_residual", 16),
])
def test_timm_blocks(name: str, pattern: str, n: int) -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model(name, pretrained=False).eval()
    got = matched(model, pattern, torch.randn(1, 3, 64, 64))
    assert len(got) == n and all(g.startswith(("layer", "blocks.")) for g in got)


def test_efficientnet_lite_blocks() -> None:
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    model, x = lite.EfficientNet.from_name("efficientnet-lite0").eval(), torch.randn(1, 3, 64, 64)
    net = fxnas.searchify(model, "inverted_residual", ["ORIG"], example_inputs=x)
    assert sorted(fxnas.mixed_ops(net)) == sorted(f"_blocks.{i}" for i in range(len(model._blocks)))
    with torch.no_grad():
        torch.testing.assert_close(materialize(net, {})(x), model(x))

"""Graph patterns: functional calls with their weights and subgraphs matched by structure become one slot
each, recording inputs, outputs and the original subgraph (all-ORIG == the model, numerically)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import fxnas
from fxnas.errors import PatternError
from fxnas.passes.materialize import materialize


class FNet(nn.Module):
    """Functional layers only: a conv, a linear and a matmul reading the linear's weight again (shared)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.l, self.b = nn.Parameter(torch.randn(5, 8)), nn.Parameter(torch.randn(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.conv2d(x, self.w, padding=1)).mean((2, 3))
        return torch.matmul(F.linear(y, self.l, self.b), self.l) + torch.matmul(y, y.t()).sum()


def _check(model: nn.Module, pattern: str, x: torch.Tensor) -> list[str]:
    model.eval()
    net = fxnas.searchify(model, pattern, ["ORIG"], example_inputs=x).eval()
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(net(x), want)
        torch.testing.assert_close(materialize(net, {})(x), want)
    return list(fxnas.mixed_ops(net))


@pytest.mark.parametrize("pattern, n", [("fconv", 1), ("flinear", 1), ("matmul", 1)])
def test_functional_calls_with_their_weights(pattern: str, n: int) -> None:
    x = torch.randn(2, 3, 8, 8)
    assert len(_check(FNet(), pattern, x)) == n  # y @ y.t() has no weight operand: not a slot
    gm = fxnas.trace(FNet(), x)
    name = fxnas.rewrite(gm, pattern)[0]
    spec = fxnas.slots(gm)[name].spec
    assert isinstance(spec.original, torch.fx.GraphModule) and spec.inputs and spec.outputs
    assert [n.op for n in spec.original.graph.nodes].count("get_attr") >= 1  # the weights moved in with the call
    if pattern == "fconv":
        assert (spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride) == (3, 8, 3, 1)


def test_conv_bn_act_torchvision_and_timm() -> None:
    x = torch.randn(1, 3, 32, 32)
    rn = torchvision.models.resnet18(num_classes=4)
    assert len(_check(rn, "conv_bn_act", x)) == 9  # the stem and each block's conv1-bn1-relu
    gm = fxnas.trace(rn.eval(), x)
    fxnas.rewrite(gm, "conv_bn_act")
    spec = fxnas.slots(gm)["layer1_0"].spec
    assert (spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride) == (64, 64, 3, 1)
    assert spec.inputs == ("maxpool",) and spec.outputs == ("layer1_0_relu",)
    timm = pytest.importorskip("timm")
    eff = timm.create_model("efficientnet_b0", pretrained=False)  # BatchNormAct2d: norm and act in one leaf
    with_act = sum(1 for m in eff.modules() if isinstance(m, timm.layers.BatchNormAct2d)
                   and not isinstance(m.act, nn.Identity))  # project convs' norms have no activation
    assert len(_check(eff, "conv_bn_act", x)) == with_act == 33


def test_mlp_in_a_timm_vit_across_dropout_and_identity() -> None:
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=3)
    got = _check(vit, "mlp", torch.randn(1, 3, 32, 32))
    assert got == [f"blocks_{i}_mlp" for i in range(3)]


def test_a_used_inner_node_is_not_a_match_and_errors() -> None:
    class Leaky(nn.Module):  # the hidden activation is also an output: the MLP cannot be one slot
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = F.gelu(self.a(x))
            return self.b(h), h

    gm = fxnas.trace(Leaky(), torch.randn(2, 4))
    with pytest.raises(PatternError, match="pattern 'mlp' matched no subgraph"):
        fxnas.rewrite(gm, "mlp")
    with pytest.raises(PatternError, match="cannot be combined"):
        fxnas.rewrite(gm, "mlp,linear")


class MyAttention(nn.Module):
    """Attention written out: q, k, v linears, softmax(q k^T) v, an output linear; reshapes read x.shape."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.h = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (f(x).reshape(b, n, self.h, d // self.h).transpose(1, 2) for f in (self.q, self.k, self.v))
        a = torch.softmax(q @ k.transpose(-2, -1) / (d // self.h) ** 0.5, dim=-1)
        return self.o((a @ v).transpose(1, 2).reshape(b, n, d))


def test_attention_blocks_written_out_and_in_timm() -> None:
    model = nn.Sequential(MyAttention(), nn.LayerNorm(16), MyAttention())
    assert _check(model, "attention", torch.randn(2, 5, 16)) == ["0", "2"]
    timm = pytest.importorskip("timm")
    for fused in (True, False):  # F.scaled_dot_product_attention, or the softmax(q @ k) path
        vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2)
        for blk in vit.blocks:
            blk.attn.fused_attn = fused
        assert _check(vit, "attention", torch.randn(1, 3, 32, 32)) == ["blocks_0_attn", "blocks_1_attn"]

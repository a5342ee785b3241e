"""The peers' 6-layer, 4-candidate DARTS benchmark space, built by fxnas and written by hand.

Stem: conv3x3 16 + BN + ReLU; six layers of 16/16/32/32/64/64 channels (stride 2 at the 3rd and the 5th),
each a choice of conv3x3, conv5x5, sepconv3x3 and an inverted residual (expand 3, kernel 3); global
average pool and a linear head. fxnas builds the supernet by searchifying the plain network's layer convs
with the candidates NC3, NC5, SC3 and MB3E3; ``HandSupernet`` is the same network written directly in
PyTorch (the candidates as ``nn.Sequential`` in the same parameter order, the alphas a list of tensors), and
``copy_into`` gives it the fxnas supernet's weights, buffers and alphas.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn

import fxnas
from fxnas.passes.patterns import Pattern

WIDTHS = (16, 16, 32, 32, 64, 64)
STRIDES = (1, 1, 2, 1, 2, 1)
CANDIDATES = ("NC3", "NC5", "SC3", "MB3E3")


class Plain6(nn.Module):
    """The plain network searchify starts from: every layer a 3x3 conv (each becomes a mixed op)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        cins = (16,) + WIDTHS[:-1]
        self.layers = nn.Sequential(*[nn.Conv2d(ci, co, 3, s, 1, bias=False)
                                      for ci, co, s in zip(cins, WIDTHS, STRIDES)])
        self.fc = nn.Linear(WIDTHS[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _layer_conv(m: nn.Module, n: fx.Node) -> bool:
    return isinstance(m, nn.Conv2d) and str(n.target).startswith("layers.")


LAYERS = Pattern("layers", _layer_conv, doc="the six layer convs of Plain6")


def fxnas_supernet(mixed_op: str = "SoftmaxSum", seed: int = 0) -> fx.GraphModule:
    """The fxnas supernet: Plain6's layer convs searchified over CANDIDATES with ``mixed_op``."""
    torch.manual_seed(seed)
    return fxnas.searchify(Plain6().eval(), LAYERS, list(CANDIDATES), example_inputs=torch.randn(1, 3, 32, 32),
                           mixed_op=mixed_op).train()


def layer_ops(supernet: fx.GraphModule) -> list[nn.Module]:
    """The supernet's mixed ops in layer order."""
    ops = fxnas.mixed_ops(supernet)
    return [ops[k] for k in sorted(ops, key=lambda k: int("".join(c for c in k if c.isdigit()) or 0))]


def _conv_bn(ci: int, co: int, k: int, s: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU,
             ) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(ci, co, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(co)]
    return layers + ([act()] if act is not None else [])


def _sep(ci: int, co: int, s: int) -> list[nn.Module]:
    return [nn.ReLU(), nn.Conv2d(ci, ci, 3, s, 1, groups=ci, bias=False), nn.Conv2d(ci, co, 1, bias=False),
            nn.BatchNorm2d(co)]


class InvRes(nn.Module):
    """Inverted residual e3k3: expand 1x1 (ReLU6), depthwise 3x3 (ReLU6), project 1x1; residual if it fits."""

    def __init__(self, ci: int, co: int, s: int) -> None:
        super().__init__()
        mid = 3 * ci
        self.body = nn.Sequential(*_conv_bn(ci, mid, 1, act=nn.ReLU6),
                                  *_conv_bn(mid, mid, 3, s, groups=mid, act=nn.ReLU6),
                                  *_conv_bn(mid, co, 1, act=None))
        self.residual = s == 1 and ci == co

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class HandMixed(nn.Module):
    """One hand-written DARTS layer: the softmax-weighted sum of four candidates."""

    def __init__(self, ci: int, co: int, s: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList([nn.Sequential(*_conv_bn(ci, co, 3, s)), nn.Sequential(*_conv_bn(ci, co, 5, s)),
                                  nn.Sequential(*_sep(ci, ci, s), *_sep(ci, co, 1)), InvRes(ci, co, s)])

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out = w[0] * self.ops[0](x)
        for i in range(1, len(self.ops)):
            out = out + w[i] * self.ops[i](x)
        return out


class HandSupernet(nn.Module):
    """The benchmark supernet as written by hand; ``alphas`` are plain leaf tensors, not module parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 16, 3))
        cins = (16,) + WIDTHS[:-1]
        self.cells = nn.ModuleList([HandMixed(ci, co, s) for ci, co, s in zip(cins, WIDTHS, STRIDES)])
        self.fc = nn.Linear(WIDTHS[-1], num_classes)
        self.alphas = [(1e-3 * torch.randn(len(CANDIDATES))).requires_grad_() for _ in WIDTHS]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell, a in zip(self.cells, self.alphas):
            x = cell(x, F.softmax(a, dim=-1))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def copy_into(hand: HandSupernet, supernet: fx.GraphModule) -> None:
    """Give ``hand`` the supernet's weights, BN buffers and alphas (matched by order, shapes checked)."""
    ops = layer_ops(supernet)
    pairs: list[tuple[nn.Module, nn.Module]] = [(hand.stem, supernet.get_submodule("stem")),
                                                (hand.fc, supernet.get_submodule("fc"))]
    for cell, op in zip(hand.cells, ops):
        pairs += [(mine, op.candidates[name]) for mine, name in zip(cell.ops, CANDIDATES)]
    with torch.no_grad():
        for mine, theirs in pairs:
            for a, b in zip([*mine.parameters(), *mine.buffers()], [*theirs.parameters(), *theirs.buffers()],
                            strict=True):
                assert a.shape == b.shape, (type(mine).__name__, a.shape, b.shape)
                a.copy_(b)
        for a, op in zip(hand.alphas, ops, strict=True):
            a.copy_(op.alpha)

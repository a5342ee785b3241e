"""Random small CNNs for the property tests, written as plain ``nn.Module`` code (no fxnas inside).

Blocks: conv-bn-relu, residual add, concat, split/chunk, grouped (dilated) conv, depthwise + pointwise,
squeeze-excite mul, max/avg pooling; then global pooling, flatten and one or two linears. A model is
described by a :class:`NetSpec` (plain data, so hypothesis can shrink it and a failure prints a readable
repro) and built by :func:`build`; every block is an ordinary module whose ``forward`` uses the
torch op it is about (``+``, ``torch.cat``, ``torch.split``/``chunk``, ``*``, pooling, ``flatten``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from hypothesis import strategies as st
from torch import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d}
BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
POOL = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d, ("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d}
GAP = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}
WIDTHS = (4, 8, 12, 16)


@dataclass(frozen=True)
class Block:
    """One block: ``kind`` and its integer arguments (channels out, kernel, stride...)."""

    kind: str
    cout: int = 0
    k: int = 3
    stride: int = 1
    extra: int = 0  # concat: channels of the second branch; split: channels of the first part; SE: hidden
    # channels; grouped: dilation; residual: blocks in the stage


@dataclass(frozen=True)
class NetSpec:
    """A whole model: spatial dims, input channels and size, the blocks, and the head."""

    dim: int
    cin: int
    size: int
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    hidden: int = 0  # 0: a single Linear head, else Linear-ReLU-Linear with this many hidden units
    classes: int = 5

    def example(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        """An input batch of the right shape."""
        g = torch.Generator().manual_seed(seed)
        return torch.randn((batch, self.cin) + (self.size,) * self.dim, generator=g)


def conv_bn_relu(dim: int, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (same padding) + BatchNorm + ReLU."""
    return nn.Sequential(CONV[dim](cin, cout, k, stride, k // 2, groups=groups, bias=False), BN[dim](cout), nn.ReLU())


class Residual(nn.Module):
    """``x + body(x)``: two convs keeping channels and size."""

    def __init__(self, dim: int, c: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(dim, c, c, k), CONV[dim](c, c, k, 1, k // 2, bias=False), BN[dim](c))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Concat(nn.Module):
    """``cat([a(x), b(x)])``: two branches of different kernels and widths."""

    def __init__(self, dim: int, cin: int, c1: int, c2: int, k: int, stride: int) -> None:
        super().__init__()
        self.a = conv_bn_relu(dim, cin, c1, k, stride)
        self.b = conv_bn_relu(dim, cin, c2, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


class Split(nn.Module):
    """``torch.split`` into two parts (``chunk`` when the parts are equal), a conv on each, then ``cat``."""

    def __init__(self, dim: int, c: int, first: int, k: int) -> None:
        super().__init__()
        self.sizes = [first, c - first]
        self.a = conv_bn_relu(dim, first, first, k)
        self.b = conv_bn_relu(dim, c - first, c - first, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sizes[0] == self.sizes[1]:
            p, q = x.chunk(2, dim=1)
        else:
            p, q = torch.split(x, self.sizes, dim=1)
        return torch.cat([self.b(q), self.a(p)], dim=1)


class Depthwise(nn.Module):
    """A depthwise conv then a pointwise conv (a separable conv)."""

    def __init__(self, dim: int, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.dw = conv_bn_relu(dim, cin, cin, k, stride, groups=cin)
        self.pw = conv_bn_relu(dim, cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class SqueezeExcite(nn.Module):
    """``x * sigmoid(fc2(relu(fc1(mean(x)))))`` with 1x1 convs (a squeeze-excite gate)."""

    def __init__(self, dim: int, c: int, hidden: int) -> None:
        super().__init__()
        self.pool = GAP[dim](1)
        self.fc1 = CONV[dim](c, hidden, 1)
        self.fc2 = CONV[dim](hidden, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(self.pool(x)))))


class Net(nn.Module):
    """The model a :class:`NetSpec` describes: blocks, global pooling, flatten, linear head."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        d, c = spec.dim, spec.cin
        layers: list[nn.Module] = []
        for b in spec.blocks:
            if b.kind == "conv":
                layers.append(conv_bn_relu(d, c, b.cout, b.k, b.stride))
                c = b.cout
            elif b.kind == "residual":  # a stage of ``extra`` residual blocks (what elastic depth shortens)
                layers.extend(Residual(d, c, b.k) for _ in range(max(b.extra, 1)))
            elif b.kind == "concat":
                layers.append(Concat(d, c, b.cout, b.extra, b.k, b.stride))
                c = b.cout + b.extra
            elif b.kind == "split":
                layers.append(Split(d, c, b.extra, b.k))
            elif b.kind == "grouped":  # a grouped conv (groups 2), dilated when extra > 1
                layers.append(nn.Sequential(
                    CONV[d](c, b.cout, b.k, 1, (b.k // 2) * max(b.extra, 1), dilation=max(b.extra, 1), groups=2,
                            bias=False), BN[d](b.cout), nn.ReLU()))
                c = b.cout
            elif b.kind == "depthwise":
                layers.append(Depthwise(d, c, b.cout, b.k, b.stride))
                c = b.cout
            elif b.kind == "se":
                layers.append(SqueezeExcite(d, c, b.extra))
            elif b.kind in ("max", "avg"):
                layers.append(POOL[(b.kind, d)](2))
            else:
                raise ValueError(f"unknown block kind {b.kind!r}")
        self.features = nn.Sequential(*layers)
        self.pool = GAP[d](1)
        self.head = nn.Linear(c, spec.classes) if not spec.hidden else nn.Sequential(
            nn.Linear(c, spec.hidden), nn.ReLU(), nn.Linear(spec.hidden, spec.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def build(spec: NetSpec) -> Net:
    """The model of ``spec``, in eval mode, with random BatchNorm statistics (outputs far from zero)."""
    from conftest import randomize_bn

    torch.manual_seed(0)
    return randomize_bn(Net(spec)).eval()


@st.composite
def blocks(draw: st.DrawFn, dim: int, cin: int, size: int) -> tuple[Block, ...]:
    """Up to five blocks; strides and pools only while the size stays at least 2."""
    out: list[Block] = []
    c = cin
    for _ in range(draw(st.integers(1, 5))):
        kinds = ["conv", "residual", "concat", "split", "depthwise", "se"] + (["max", "avg"] if size >= 4 else [])
        if c < 2:
            kinds.remove("split")
        if c % 2 == 0:
            kinds.append("grouped")
        kind = draw(st.sampled_from(kinds))
        k = draw(st.sampled_from((1, 3, 5))) if kind in ("conv", "depthwise") else draw(st.sampled_from((3, 5)))
        stride = draw(st.sampled_from((1, 2))) if kind in ("conv", "concat", "depthwise") and size >= 4 else 1
        if kind in ("conv", "depthwise"):
            b = Block(kind, draw(st.sampled_from(WIDTHS)), k, stride)
            c = b.cout
        elif kind == "concat":
            b = Block(kind, draw(st.sampled_from(WIDTHS)), k, stride, draw(st.sampled_from(WIDTHS)))
            c = b.cout + b.extra
        elif kind == "grouped":
            b = Block(kind, draw(st.sampled_from(WIDTHS)), k, 1, draw(st.sampled_from((1, 2))))
            c = b.cout
        elif kind == "split":
            b = Block(kind, c, k, 1, draw(st.sampled_from([c // 2] + [n for n in (2, 4) if n < c])))
        elif kind == "residual":
            b = Block(kind, c, k, 1, draw(st.integers(1, 3)))
        elif kind == "se":
            b = Block(kind, c, 1, 1, draw(st.sampled_from((2, 4))))
        else:
            b = Block(kind, c, k, 1)
        if kind in ("max", "avg") or b.stride == 2:
            size = (size + 1) // 2 if kind not in ("max", "avg") else size // 2
        out.append(b)
    return tuple(out)


@st.composite
def net_specs(draw: st.DrawFn, dims: tuple[int, ...] = (1, 2)) -> NetSpec:
    """A random :class:`NetSpec`: 1-D (length 16) or 2-D (8x8) input, 1 to 5 blocks, one or two linears."""
    dim = draw(st.sampled_from(dims))
    cin = draw(st.sampled_from((1, 3, 4)))
    size = 16 if dim == 1 else 8
    return NetSpec(dim, cin, size, draw(blocks(dim, cin, size)), draw(st.sampled_from((0, 6))))

"""The NAS-Bench-201 network as an ordinary PyTorch model, and the fxnas passes that turn it into a space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ...candidates.ops import relu_conv_bn
from ...errors import ConfigError
from ...slot import SlotSpec
from ...space import Categorical, SearchSpace
from ..registry import SPACES
from . import ops  # noqa: F401  (registers RCB{k}, AVG3P, the cell's candidates)

# NB201's op names, in the benchmark's order, and the fxnas candidates implementing them
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_CANDIDATES = ("NIL", "IDT", "RCB1", "RCB3", "AVG3P")
OP_TO_CANDIDATE = dict(zip(NB201_OPS, NB201_CANDIDATES))
CANDIDATE_TO_OP = dict(zip(NB201_CANDIDATES, NB201_OPS))
NUM_NODES = 4
# edge k joins node i (input) to node j (output), in the order of the NB201 string |op~0|+|op~0|op~1|+...
EDGES = tuple((i, j) for j in range(1, NUM_NODES) for i in range(j))
EDGE_PARAMS = tuple(f"edge{k}" for k in range(len(EDGES)))


class Edge(nn.Module):
    """One cell edge: a ReLU-Conv3x3-BN here; the type the search pattern picks out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = relu_conv_bn(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Cell(nn.Module):
    """A DAG of 4 nodes: node j is the sum of edge(i → j)(node i) over i < j; the last node is the output."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList([Edge(channels) for _ in EDGES])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for j in range(1, NUM_NODES):
            s = self.edges[k](nodes[0])
            k += 1
            for i in range(1, j):
                s = s + self.edges[k](nodes[i])
                k += 1
            nodes.append(s)
        return nodes[-1]


class ResBlock(nn.Module):
    """NB201's residual reduction block: two ReLU-Conv3x3-BN (first strided) plus an avg-pool + 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(cin, cout, 3, 2)
        self.conv_b = relu_conv_bn(cout, cout, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Net(nn.Module):
    """Stem conv3x3 → 3 stages of ``cells_per_stage`` cells (C, 2C, 4C) with ResBlocks between → BN-ReLU-GAP-FC."""

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResBlock(c, 2 * c))
                c *= 2
            layers += [Cell(c) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def edge_param(spec: SlotSpec) -> str:
    """Param name of a cell-edge slot (``cells.3.edges.2`` → ``edge2``): every cell shares the 6 edge params."""
    return f"edge{spec.name.rsplit('.', 1)[-1]}"


def nb201_space() -> SearchSpace:
    """The NB201 space without a model: ``edge0..edge5``, each a choice of NB201_CANDIDATES."""
    space = SearchSpace()
    for name in EDGE_PARAMS:
        space.add(Categorical(name, NB201_CANDIDATES))
    return space


def _input_channels(in_channels: int | None, input_shape: Sequence[int] | None) -> int:
    """The stem's input channels: ``in_channels``, else ``input_shape[1]``, else 3 (CIFAR); they must agree."""
    if input_shape is not None and len(input_shape) != 4:
        raise ConfigError(f"NB201 needs an input_shape (batch, channels, height, width), got {tuple(input_shape)}")
    if in_channels is not None and input_shape is not None and int(in_channels) != int(input_shape[1]):
        raise ConfigError(f"NB201: in_channels={in_channels} but input_shape {tuple(input_shape)} has "
                          f"{input_shape[1]} channels")
    return int(in_channels if in_channels is not None else input_shape[1] if input_shape is not None else 3)


def nb201_supernet(channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10, mixed_op: str = "Index",
                   example_inputs: Any = None, in_channels: int | None = None,
                   input_shape: Sequence[int] | None = None, **searchify_args: Any) -> fx.GraphModule:
    """The NB201 supernet made by fxnas's own passes from NB201Net: pattern Edge → Slots → construct.

    Traced on ``example_inputs``, else on a batch of 2 of ``input_shape`` (default 3x32x32, CIFAR); the stem
    takes ``in_channels`` (default: those of the input).
    """
    from ...api import searchify

    if example_inputs is not None and input_shape is None and isinstance(example_inputs, torch.Tensor):
        input_shape = tuple(example_inputs.shape)
    cin = _input_channels(in_channels, input_shape)
    model = NB201Net(channels, cells_per_stage, num_classes, cin)
    # batch 2: tracing runs the fresh model in training mode, where BatchNorm needs more than one value
    x = example_inputs if example_inputs is not None else \
        torch.randn(2, cin, *(tuple(input_shape[2:]) if input_shape is not None else (32, 32)))
    return searchify(model, pattern=Edge, candidates=list(NB201_CANDIDATES), example_inputs=x,
                     mixed_op=mixed_op, param_name=edge_param, **searchify_args)


@SPACES.register("nb201")
def build_nb201(supernet: bool = False, num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5,
                mixed_op: str = "Index", in_channels: int | None = None,
                input_shape: Sequence[int] | None = None) -> SearchSpace | fx.GraphModule:
    """The ``nb201`` named space: just the 6 edge params (table search), or the supernet when ``supernet``.

    A config with a data section passes ``num_classes``, ``in_channels`` and ``input_shape`` of its data.
    """
    if not supernet:
        return nb201_space()
    return nb201_supernet(channels, cells_per_stage, num_classes, mixed_op, in_channels=in_channels,
                          input_shape=input_shape)

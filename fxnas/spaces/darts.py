"""The DARTS cell search space, built by fxnas's own passes from an ordinary PyTorch network.

``DartsNetwork`` is a plain model: stem, ``layers`` stacked cells (reductions at 1/3 and 2/3 of the depth),
each cell with two preprocessing ops (ReLU-conv1x1-BN, or FactorizedReduce after a reduction), ``steps``
intermediate nodes fed by an ``Edge`` from every earlier state (14 edges for 4 nodes), the concat of the last
``multiplier`` nodes, then global pool and a classifier. An ``Edge`` is an ordinary ReLU-conv3x3-BN. With
``auxiliary`` an auxiliary head reads the cell at 2/3 of the depth and the network returns ``(logits,
aux_logits)`` (DARTS's augment network; the Auxiliary criterion trains it, the Retrain estimator removes it
from the exported subnet).

``darts_supernet`` traces it, rewrites every ``Edge`` into a Slot (the ``Edge`` module type is the pattern)
and constructs mixed ops with a ``param_name`` that makes all normal cells share params ``normal.e{i}`` and
all reduction cells share ``reduce.e{i}``: 28 categorical params (plus 28 alphas with a gradient mixed op).
"""

from __future__ import annotations

import itertools
import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..api import searchify
from ..candidates.darts_ops import FactorizedReduce
from ..candidates.ops import relu_conv_bn
from ..errors import ConfigError
from ..slot import SlotSpec
from ..space import DERIVE_RULES, Categorical, SearchSpace
from ..supernet import space_of
from .registry import SPACES

DARTS_CANDIDATES = ["NIL", "MAX3", "AVG3", "IDT", "SEP3", "SEP5", "DIL3", "DIL5"]
# fxnas candidate names -> the primitive names of the DARTS code (for genotypes)
DARTS_NAMES = {"NIL": "none", "MAX3": "max_pool_3x3", "AVG3": "avg_pool_3x3", "IDT": "skip_connect",
               "SKIP": "skip_connect", "SEP3": "sep_conv_3x3", "SEP5": "sep_conv_5x5", "DIL3": "dil_conv_3x3",
               "DIL5": "dil_conv_5x5"}

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
Genotype.__doc__ = "A DARTS genotype: (op, input state) pairs per cell kind and the states concatenated."


class Edge(nn.Module):
    """A cell edge of the plain network: ReLU - conv3x3 (stride) - BN; the search replaces it."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, stride, 1, bias=False),
                                nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def num_edges(steps: int) -> int:
    """Edges of a cell with ``steps`` intermediate nodes (2 inputs): 14 for 4 nodes."""
    return sum(2 + i for i in range(steps))


class Cell(nn.Module):
    """A DARTS cell: node i sums one Edge from each of the two inputs and the earlier nodes."""

    def __init__(self, steps: int, multiplier: int, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps, self.multiplier = steps, multiplier
        self.preprocess0 = FactorizedReduce(c_pp, c, affine=True) if reduction_prev else relu_conv_bn(c_pp, c)
        self.preprocess1 = relu_conv_bn(c_p, c)
        self.edges = nn.ModuleList(Edge(c, 2 if reduction and j < 2 else 1)
                                   for i in range(steps) for j in range(2 + i))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = self.edges[offset](states[0])
            for j in range(1, len(states)):
                s = s + self.edges[offset + j](states[j])
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier:], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary head: ReLU, pool to 2x2 (adaptive, so any input size works), conv1x1 128 - BN -
    ReLU, conv2x2 768 - BN - ReLU, linear classifier."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128),
            nn.ReLU(), nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR search network with plain ``Edge`` ops (an ordinary, trainable model)."""

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, steps: int = 4, multiplier: int = 4,
                 stem_multiplier: int = 3, in_channels: int = 3, auxiliary: bool = False) -> None:
        super().__init__()
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            cell = Cell(steps, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            c_pp, c_p = c_p, multiplier * c_curr
            if auxiliary and i == self.aux_position(layers):
                self.auxiliary_head = AuxiliaryHead(c_p, num_classes)
        self.auxiliary = auxiliary
        self.classifier = nn.Linear(c_p, num_classes)

    @staticmethod
    def aux_position(layers: int) -> int:
        """The cell the auxiliary head reads: the one at 2/3 of the depth (DARTS)."""
        return 2 * layers // 3

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if self.auxiliary and i == self.aux_position(len(self.cells)):
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(F.adaptive_avg_pool2d(s1, 1), 1))
        return logits if aux is None else (logits, aux)


def reduction_layers(layers: int) -> set[int]:
    """Indices of the reduction cells: 1/3 and 2/3 of the depth (as in DARTS)."""
    return {layers // 3, 2 * layers // 3} if layers >= 2 else set()


_EDGE_PATH = re.compile(r"cells\.(\d+)\.edges\.(\d+)")


def darts_param_name(layers: int) -> Callable[[SlotSpec], str]:
    """A construct ``param_name``: every normal cell's edge i is ``normal.e{i}``, every reduction's ``reduce.e{i}``."""
    reductions = reduction_layers(layers)

    def name(spec: SlotSpec) -> str:
        m = _EDGE_PATH.fullmatch(spec.name)
        if m is None:
            raise ConfigError(f"slot {spec.name!r} is not a DARTS cell edge (cells.<i>.edges.<j>)")
        return f"{'reduce' if int(m.group(1)) in reductions else 'normal'}.e{m.group(2)}"

    return name


@SPACES.register("darts")
def darts_supernet(C: int = 16, layers: int = 8, num_classes: int = 10,
                   input_shape: Sequence[int] = (1, 3, 32, 32), mixed_op: str = "SoftmaxSum",
                   candidates: Sequence[str] = tuple(DARTS_CANDIDATES), steps: int = 4, multiplier: int = 4,
                   stem_multiplier: int = 3, mixed_op_args: Mapping[str, Any] | None = None,
                   auxiliary: bool = False) -> fx.GraphModule:
    """The DARTS search space as a supernet: ``DartsNetwork`` with every Edge searched over ``candidates``.

    Its space derives archs by the DARTS cell rule (``darts_cell``: two strongest edges per node).
    ``auxiliary``: add DARTS's auxiliary head (the network returns ``(logits, aux_logits)``) for a retrain
    with the Auxiliary criterion (``Retrain``'s ``auxiliary`` option).
    """
    model = DartsNetwork(C, num_classes, layers, steps, multiplier, stem_multiplier, in_channels=input_shape[1],
                         auxiliary=auxiliary)
    net = searchify(model, pattern=Edge, candidates=list(candidates), example_inputs=torch.randn(*input_shape),
                    mixed_op=mixed_op, param_name=darts_param_name(layers), mixed_op_args=mixed_op_args)
    space_of(net).derive_rule = "darts_cell"
    return net


def _edge_weights(space: SearchSpace, name: str) -> torch.Tensor:
    """softmax(alpha) of an edge param, or the one-hot of its current value when it has no alpha."""
    cat = space[name]
    assert isinstance(cat, Categorical)
    if f"{name}.alpha" in space:
        return F.softmax(space[f"{name}.alpha"].value.detach().float().cpu(), dim=-1)
    return F.one_hot(torch.tensor(cat.index()), len(cat.choices)).float()


def cell_steps(space: SearchSpace) -> int:
    """Intermediate nodes per DARTS cell, read off the space: node i has 2 + i incoming edges."""
    n = next(k for k in itertools.count() if f"normal.e{k}" not in space and f"reduce.e{k}" not in space)
    steps = next((s for s in range(n + 1) if s * (s + 3) // 2 == n), None)
    if steps is None:
        raise ConfigError(f"DARTS cells have 2 + i edges into node i; this space has {n} edges a cell")
    return steps


@DERIVE_RULES.register("darts_cell")
def darts_derive(space: SearchSpace, steps: int | None = None, none: str = "NIL", keep: int = 2) -> dict[str, Any]:
    """The DARTS discretisation: per node keep the ``keep`` incoming edges whose best non-``none`` op is
    strongest, each with that op; the other edges become ``none``. Other params take their argmax.
    ``steps`` (nodes per cell) defaults to what the space's edge count implies."""
    steps = cell_steps(space) if steps is None else steps
    arch = space.argmax()
    for kind in ("normal", "reduce"):
        if f"{kind}.e0" not in space:
            continue
        offset = 0
        for i in range(steps):
            scored = []
            for j in range(2 + i):
                name = f"{kind}.e{offset + j}"
                choices = space[name].choices  # type: ignore[attr-defined]
                w = _edge_weights(space, name)
                best = max((k for k in range(len(choices)) if choices[k] != none), key=lambda k: float(w[k]))
                scored.append((float(w[best]), name, choices[best]))
            kept = {name for _, name, _ in sorted(scored, reverse=True)[:keep]}
            for _, name, op in scored:
                arch[name] = op if name in kept else none
            offset += 2 + i
    return arch


def genotype(arch: Mapping[str, Any], steps: int = 4, multiplier: int = 4, none: str = "NIL") -> Genotype:
    """A DARTS-style Genotype of ``arch``: (DARTS primitive name, input state) for every non-``none`` edge."""
    cells = {}
    for kind in ("normal", "reduce"):
        gene, offset = [], 0
        for i in range(steps):
            for j in range(2 + i):
                op = arch.get(f"{kind}.e{offset + j}", none)
                if op != none:
                    gene.append((DARTS_NAMES.get(op, op), j))
            offset += 2 + i
        cells[kind] = gene
    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(cells["normal"], concat, cells["reduce"], concat)

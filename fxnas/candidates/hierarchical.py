"""Hierarchical candidates: candidates whose parts are inner Slots, lowered by the constructor in turn.

* ``BRANCH(A|B+C|D)``: the sum of branches (separated by ``+``); each branch is an inner slot choosing among
  its ``|``-separated candidates. ``BRANCH(NC3|DW3+IDT|NIL)`` = one of NC3/DW3 plus one of IDT/NIL.
* ``CELL{n}(A|B|...)``: a DAG cell (NAS-Bench-201 style) with ``n`` nodes after the input; node j is the sum of
  one edge from every earlier node, each edge an inner slot over the listed candidates; the output is the
  last node. Edges from the input carry the slot's stride and channel change; the others keep the shape.

``construct`` names each inner param ``<outer param>.<candidate>.<path inside it>`` (e.g.
``conv1.BRANCH(NC3|DW3+IDT|NIL).branches.0``), so slots sharing an outer param share the inner ones too.
Until lowered, an inner slot runs its first candidate, so a hierarchical candidate also works on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..slot import Slot, SlotSpec
from .registry import CANDIDATES, build_candidate


class InnerSlot(Slot):
    """A slot inside a candidate; ``choices`` are its own candidate names (construct uses them)."""

    def __init__(self, spec: SlotSpec, choices: Sequence[str]) -> None:
        choices = [c.strip() for c in choices if c.strip()]
        if not choices:
            raise ConfigError(f"inner slot {spec.name!r} has no candidates")
        for c in choices[1:]:
            CANDIDATES.get(c)  # unknown names fail here, naming the valid ones
        super().__init__(spec.with_(original=build_candidate(choices[0], spec.with_(original=None))))
        self.choices = choices


class Branches(nn.Module):
    """Sum of parallel branches."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for b in self.branches[1:]:
            out = out + b(x)
        return out


class DagCell(nn.Module):
    """A DAG of ``nodes`` nodes after the input; node j sums one edge from each earlier node."""

    def __init__(self, nodes: int, edges: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(edges) != nodes * (nodes + 1) // 2:
            raise ConfigError(f"a DAG cell of {nodes} nodes needs {nodes * (nodes + 1) // 2} edges, got {len(edges)}")
        self.nodes = nodes
        self.edges = nn.ModuleList(edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        k = 0
        for _ in range(self.nodes):
            s = self.edges[k](states[0])
            k += 1
            for h in states[1:]:
                s = s + self.edges[k](h)
                k += 1
            states.append(s)
        return states[-1]


def _choices(text: str) -> list[str]:
    return [c.strip() for c in text.split("|") if c.strip()]


@CANDIDATES.register_family(r"BRANCH\((.+)\)", "BRANCH(NC3|DW3+IDT|NIL)")
def _branch(body: str):
    parts = [p for p in body.split("+") if p.strip()]
    if not parts:
        raise ConfigError(f"BRANCH({body}) has no branches; write BRANCH(A|B+C|D)")

    def build(spec: SlotSpec) -> nn.Module:
        inner = spec.with_(original=None)
        return Branches([InnerSlot(inner.with_(name=f"{spec.name}.branches.{i}"), _choices(p))
                         for i, p in enumerate(parts)])

    return build


@CANDIDATES.register_family(r"CELL(\d+)\((.+)\)", "CELL3(NIL|IDT|NC3|AVG3)")
def _cell(n: str, body: str):
    nodes = int(n)
    if nodes < 1:
        raise ConfigError(f"CELL{n}: a DAG cell needs at least one node")
    names = _choices(body)

    def build(spec: SlotSpec) -> nn.Module:
        first = spec.with_(original=None)
        rest = first.with_(in_channels=spec.out_channels, in_shape=spec.out_shape, stride=1)
        edges = []
        for j in range(nodes):
            for i in range(j + 1):
                base = first if i == 0 else rest
                edges.append(InnerSlot(base.with_(name=f"{spec.name}.edges.{len(edges)}"), names))
        return DagCell(nodes, edges)

    return build

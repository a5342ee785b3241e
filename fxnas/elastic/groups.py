"""Coupled-channel groups: what the analysis found, readable (``details()``) and as a networkx graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch.fx as fx

from ..errors import ConfigError
from .layout import Channels, Part

ROLES = {"out": "produced by", "through": "passes", "in": "consumed by"}


@dataclass
class Member:
    """One layer's use of a group: its module path, role and the channel offsets the group sits at."""

    path: str
    op: str  # module class name
    role: str  # "out": the layer computes these channels; "in": it reads them; "through": both (BN, depthwise)
    offsets: list[int] = field(default_factory=list)
    inner: int = 1  # features per channel, when a flatten before a linear spread channels over features

    def describe(self, size: int) -> str:
        """``path (Op) in[0:64]``-style text."""
        where = ", ".join(f"[{o}:{o + size}]" for o in self.offsets)
        spread = f" x{self.inner} features each" if self.inner > 1 else ""
        side = {"out": "out", "in": "in", "through": ""}[self.role]
        return f"{self.path} ({self.op}) {side}{where}{spread}"


@dataclass(eq=False)
class Group:
    """Channels that must shrink together: every member keeps the same positions of ``size`` channels."""

    index: int
    size: int
    members: list[Member] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)  # why these channels cannot shrink (model input/output...)
    name: str = ""

    @property
    def elastic(self) -> bool:
        """Whether the group may shrink (nothing pins it)."""
        return not self.pinned

    def _role(self, role: str) -> list[Member]:
        return [m for m in self.members if m.role == role]

    @property
    def producers(self) -> list[Member]:
        """Layers that compute these channels (convs, linears)."""
        return self._role("out")

    @property
    def consumers(self) -> list[Member]:
        """Layers that read these channels as their input."""
        return self._role("in")

    @property
    def through(self) -> list[Member]:
        """Layers the channels pass through one to one (norms, depthwise convs)."""
        return self._role("through")

    def layers(self) -> set[str]:
        """Module paths of every member."""
        return {m.path for m in self.members}

    def details(self) -> str:
        """A readable account: producers, pass-through layers and consumers with their offsets."""
        state = "elastic" if self.elastic else "fixed: " + "; ".join(dict.fromkeys(self.pinned))
        lines = [f"group {self.index} {self.name!r}: {self.size} channels, {state}"]
        for role, label in ROLES.items():
            for m in self._role(role):
                lines.append(f"  {label:<12} {m.describe(self.size)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Group({self.index}, {self.name!r}, size={self.size}, members={len(self.members)}" \
               f"{'' if self.elastic else ', fixed'})"


@dataclass(frozen=True)
class LayerChannels:
    """A layer's input or output channels as (group, length) parts; ``group`` is None for model input."""

    parts: tuple[tuple[Group | None, int], ...]
    inner: int = 1
    positions: int = 1  # output elements per channel and sample (spatial size), summed over calls

    def to_channels(self, params: Mapping[Group, str]) -> Channels:
        """Runtime channels: each part named by its group's width param, or fixed when it has none."""
        return Channels(tuple(Part(n, params.get(g) if g is not None else None) for g, n in self.parts),
                        self.inner)


@dataclass
class SplitSite:
    """A split/chunk of the channel dim: the graph that holds it, the node and its pieces' channels."""

    gm: fx.GraphModule
    node: fx.Node
    dim: int
    pieces: list[LayerChannels]


class ChannelGroups:
    """The result of :func:`fxnas.channel_groups`: groups in graph order, with a networkx view.

    ``graph`` has a node per group (``("group", name)``) and per layer (``("layer", path)``), and an edge from
    each group to each member layer with its ``role`` and ``offsets``; ``nx.connected_components`` of it
    shows which groups share layers.
    """

    def __init__(self, groups: list[Group], gm: fx.GraphModule, layers: dict[tuple[str, str], LayerChannels],
                 splits: list[SplitSite]) -> None:
        self.groups = groups
        self.gm = gm
        self.layers = layers  # (path, "in" | "out") -> LayerChannels; "through" layers have both
        self.splits = splits
        self.graph = self._graph()

    def _graph(self) -> nx.Graph:
        g = nx.Graph()
        for grp in self.groups:
            g.add_node(("group", grp.name), size=grp.size, elastic=grp.elastic, index=grp.index)
            for m in grp.members:
                g.add_node(("layer", m.path), op=m.op)
                g.add_edge(("group", grp.name), ("layer", m.path), role=m.role, offsets=list(m.offsets))
        return g

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    def __getitem__(self, key: int | str) -> Group:
        if isinstance(key, int):
            return self.groups[key]
        for g in self.groups:
            if g.name == key:
                return g
        raise ConfigError(f"no channel group {key!r}; groups: {[g.name for g in self.groups][:20]}")

    def elastic(self) -> list[Group]:
        """Groups that may shrink."""
        return [g for g in self.groups if g.elastic]

    def of_layer(self, path: str) -> list[Group]:
        """Groups a layer takes part in (as producer, consumer or pass-through)."""
        return [g for g in self.groups if path in g.layers()]

    def select(self, groups: Any) -> list[Group]:
        """Elastic groups picked by ``groups``: None (all), a predicate, layer paths, or ``"expansion"``."""
        if groups is None:
            return self.elastic()
        if groups == "expansion":
            return [g for g in self.elastic() if self.is_expansion(g)]
        if callable(groups):
            return [g for g in self.elastic() if groups(g)]
        if isinstance(groups, str):
            groups = [groups]
        picked: list[Group] = []
        for path in groups:
            found = [g for g in self.groups if any(m.path == path for m in g.producers)]
            if not found:
                layers = sorted({m.path for g in self.groups for m in g.producers})
                raise ConfigError(f"{path!r} produces no channel group; layers that do: {layers[:15]}")
            for g in found:
                if not g.elastic:
                    raise ConfigError(f"group {g.name!r} of {path!r} cannot shrink: {'; '.join(g.pinned)}")
                if g not in picked:
                    picked.append(g)
        return picked

    def is_expansion(self, g: Group) -> bool:
        """The hidden channels of an inverted residual: wider than every producer's input and every
        consumer's output (squeeze-excite layers inside the block included)."""
        if not g.consumers:
            return False
        sides = [self.layers.get((m.path, "in")) for m in g.producers] + \
                [self.layers.get((m.path, "out")) for m in g.consumers]
        return all(lc is not None and g.size > sum(n for _, n in lc.parts) for lc in sides)

    def details(self, where: Callable[[Group], bool] | None = None) -> str:
        """Every group's details (or those ``where`` selects), one block each."""
        return "\n".join(g.details() for g in self.groups if where is None or where(g))

    def __repr__(self) -> str:
        return f"ChannelGroups({len(self.groups)} groups, {len(self.elastic())} elastic)"

"""Coupled-channel analysis: run the channel rules over a traced graph and find the groups of channels.

Each tensor's channel dim is tracked as segments of *sources* (a layer's output, the model input, a
constant). Rules link segments that must stay equal (a residual add), pin those that cannot shrink (the
model's input and output) and record which layers produce, pass or consume them. At the end sources are
cut into *atoms* wherever any segment starts or ends (cuts travel along links), atoms that are linked are
merged, and every merged set that some layer produces is a :class:`Group`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..graph import as_tuple, node_shape, propagate_shapes, symbolic_trace
from .context import NodeContext, Source, Use
from .groups import ChannelGroups, Group, LayerChannels, Member, SplitSite
from .layout import Layout, Seg
from .rules import CHANNEL_RULES, RuleSet, find_rule, missing_rule_error, op_names


def default_leaf_types() -> tuple[type, ...]:
    """Modules traced as single ops by the analysis: mixed ops (analysed per candidate), stochastic depth."""
    from torchvision.ops import StochasticDepth

    from ..mixed.base import MixedOp

    return (MixedOp, StochasticDepth)


class Analysis:
    """The state of one coupled-channel analysis (sources, links, pins, layer uses, split sites)."""

    def __init__(self, rules: RuleSet | None = None, leaf_types: Sequence[type] = ()) -> None:
        self.rules = rules if rules is not None else CHANNEL_RULES
        self.leaf_types = tuple(leaf_types) + default_leaf_types()
        self.sources: list[Source] = []
        self.links: list[tuple[Seg, Seg]] = []
        self.pins: list[tuple[Seg, str]] = []
        self.uses: dict[tuple[str, str], Use] = {}
        self.splits: list[tuple[fx.GraphModule, fx.Node, int, list[Layout]]] = []
        self.values: dict[fx.Node, Any] = {}

    # --- primitives -------------------------------------------------------------------------------
    def source(self, length: int, dim: int, kind: str, pinned: str | None = None, where: str = "") -> Layout:
        """A new source of ``length`` channels on axis ``dim``; ``pinned`` says why it is fixed, if it is."""
        self.sources.append(Source(length, kind))
        lay = Layout(dim, (Seg(len(self.sources) - 1, 0, length),))
        if pinned:
            self.pin(lay, f"{pinned} at {where}" if where else pinned)
        return lay

    def link(self, a: Layout, b: Layout) -> None:
        """Record that ``a`` and ``b`` hold the same channels, position by position."""
        sa, sb = list(a.segs), list(b.segs)
        while sa and sb:
            x, y = sa.pop(0), sb.pop(0)
            n = min(x.length, y.length)
            self.links.append((Seg(x.src, x.start, n), Seg(y.src, y.start, n)))
            if x.length > n:
                sa.insert(0, Seg(x.src, x.start + n, x.length - n))
            if y.length > n:
                sb.insert(0, Seg(y.src, y.start + n, y.length - n))

    def pin(self, layout: Layout, reason: str) -> None:
        """Record that ``layout``'s channels are fixed."""
        for s in layout.segs:
            self.pins.append((s, reason))

    # --- running the rules ----------------------------------------------------------------------------
    def run(self, gm: fx.GraphModule, inputs: Sequence[Any] | None = None, prefix: str = "") -> Any:
        """Apply the rules to every node of ``gm``; top level (``inputs`` None) pins the model input/output."""
        placeholders = 0
        for node in gm.graph.nodes:
            ctx = NodeContext(self, gm, node, prefix)
            if node.op == "placeholder":
                val = self._placeholder(node, inputs, placeholders)
                placeholders += 1
            elif node.op == "get_attr":
                val = None  # a parameter or buffer: combined with channels, rules pin them (fixed size)
            elif node.op == "output":
                out = ctx.value(node.args[0])
                if inputs is None:
                    for lay in _layouts(out):
                        ctx.pin(lay, "model output")
                return out
            else:
                rule = find_rule(self.rules, gm, node)
                if rule is None:
                    if not _layouts(ctx.value(node.args)) and not _layouts(ctx.value(dict(node.kwargs))):
                        val = None  # size arithmetic, constants: no channels in, none out
                    else:
                        raise missing_rule_error(gm, node, op_names(gm, node))
                else:
                    val = rule(ctx)
            self.values[node] = val
        return None

    def _placeholder(self, node: fx.Node, inputs: Sequence[Any] | None, i: int) -> Any:
        if inputs is not None:
            return inputs[i] if i < len(inputs) else None
        shape = node_shape(node)
        if shape is None or len(shape) < 2:
            return None
        return self.source(shape[1], 1, "input", pinned="model input")

    def run_module(self, module: nn.Module, prefix: str, inputs: Sequence[Any],
                   shapes: Sequence[tuple[int, ...] | None]) -> tuple[fx.GraphModule, Any]:
        """Trace ``module`` (a candidate of a mixed op) on zeros of ``shapes`` and analyse it under ``prefix``.

        Returns the traced module (which replaces the candidate, so that elasticize can rewrite its nodes)
        and its output value.
        """
        root = nn.Sequential(module) if fx.Tracer().is_leaf_module(module, "") else module
        sub = symbolic_trace(root, self.leaf_types, stack_traces=True)
        p = next(module.parameters(), None)
        xs = tuple(torch.zeros(s, device=p.device if p is not None else None) for s in shapes if s is not None)
        propagate_shapes(sub, xs)
        sub.train(module.training)
        return sub, self.run(sub, inputs, prefix + ".")

    # --- atoms and groups -----------------------------------------------------------------------------
    def finish(self, gm: fx.GraphModule) -> ChannelGroups:
        """Cut sources into atoms, merge linked atoms, and build the groups with their members."""
        cuts: dict[int, set[int]] = {i: {0, s.length} for i, s in enumerate(self.sources)}

        def mark(seg: Seg) -> None:
            cuts[seg.src].update((seg.start, seg.start + seg.length))

        for a, b in self.links:
            mark(a)
            mark(b)
        for seg, _ in self.pins:
            mark(seg)
        for use in self.uses.values():
            for seg in use.layout.segs:
                mark(seg)
        for *_, pieces in self.splits:
            for lay in pieces:
                for seg in lay.segs:
                    mark(seg)
        changed = True
        while changed:  # a cut inside a linked segment cuts its partner at the same position
            changed = False
            for a, b in self.links:
                for x, y in ((a, b), (b, a)):
                    for c in [c for c in cuts[x.src] if x.start < c < x.start + x.length]:
                        d = y.start + c - x.start
                        if d not in cuts[y.src]:
                            cuts[y.src].add(d)
                            changed = True
        bounds = {src: sorted(c) for src, c in cuts.items()}
        atom_id: dict[tuple[int, int], int] = {}
        atom_len: list[int] = []
        for src in range(len(self.sources)):
            b = bounds[src]
            for lo, hi in zip(b, b[1:]):
                atom_id[(src, lo)] = len(atom_len)
                atom_len.append(hi - lo)

        def atoms(seg: Seg) -> list[int]:
            b = bounds[seg.src]
            return [atom_id[(seg.src, lo)] for lo in b if seg.start <= lo < seg.start + seg.length]

        parent = list(range(len(atom_len)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b in self.links:
            for x, y in zip(atoms(a), atoms(b)):
                rx, ry = find(x), find(y)
                if rx != ry:
                    parent[max(rx, ry)] = min(rx, ry)
        return self._groups(gm, atoms, find, atom_len)

    def _groups(self, gm: fx.GraphModule, atoms: Any, find: Any, atom_len: list[int]) -> ChannelGroups:
        by_root: dict[int, Group] = {}

        def group(atom: int) -> Group:
            r = find(atom)
            if r not in by_root:
                by_root[r] = Group(index=-1, size=atom_len[r])
            return by_root[r]

        members: dict[tuple[int, str, str], Member] = {}
        layers: dict[tuple[str, str], LayerChannels] = {}
        for use in self.uses.values():
            parts: list[tuple[Group, int]] = []
            pos = 0
            for seg in use.layout.segs:
                for atom in atoms(seg):
                    g = group(atom)
                    key = (id(g), use.path, use.role)
                    if key not in members:
                        members[key] = Member(use.path, use.op, use.role, [], use.layout.inner)
                        g.members.append(members[key])
                    members[key].offsets.append(pos)
                    parts.append((g, atom_len[atom]))
                    pos += atom_len[atom]
            lc = LayerChannels(tuple(parts), use.layout.inner, max(use.positions, 1))
            for side in (("in", "out") if use.role == "through" else (use.role,)):
                layers[(use.path, side)] = lc
        for seg, reason in self.pins:
            for atom in atoms(seg):
                group(atom).pinned.append(reason)
        listed = [g for _, g in sorted(by_root.items(), key=lambda kv: kv[0]) if g.producers]  # graph order
        names: set[str] = set()
        for i, g in enumerate(listed):
            g.index = i
            g.name = _unique(_group_name(g, layers), names)
        shown = set(listed)
        layers = {k: LayerChannels(tuple((g if g in shown else None, n) for g, n in lc.parts), lc.inner,
                                   lc.positions) for k, lc in layers.items()}
        splits = []
        for sgm, node, dim, pieces in self.splits:
            lcs = [LayerChannels(tuple((group(a) if group(a) in shown else None, atom_len[a])
                                       for s in lay.segs for a in atoms(s)), lay.inner) for lay in pieces]
            splits.append(SplitSite(sgm, node, dim, lcs))
        return ChannelGroups(listed, gm, layers, splits)


def _group_name(g: Group, layers: dict[tuple[str, str], LayerChannels]) -> str:
    prod = g.producers[0]
    out = layers.get((prod.path, "out"))
    if out is not None and len(out.parts) > 1:
        o = prod.offsets[0]
        return f"{prod.path}[{o}:{o + g.size}]"
    return prod.path


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}#{n}"
    taken.add(out)
    return out


def _layouts(v: Any) -> list[Layout]:
    if isinstance(v, Layout):
        return [v]
    if isinstance(v, (tuple, list)):
        return [lay for x in v for lay in _layouts(x)]
    if isinstance(v, dict):
        return [lay for x in v.values() for lay in _layouts(x)]
    return []


def trace_for_analysis(model: nn.Module, example_inputs: Any, leaf_modules: Sequence[type] = ()) -> fx.GraphModule:
    """Trace ``model`` itself (no copy) with source lines and shapes, mixed ops and stochastic depth as leaves."""
    gm = symbolic_trace(model, tuple(leaf_modules) + default_leaf_types(), stack_traces=True)
    gm.train(model.training)
    return propagate_shapes(gm, as_tuple(example_inputs))


def analyse(gm: fx.GraphModule, rules: RuleSet | None = None, leaf_modules: Sequence[type] = ()) -> ChannelGroups:
    """The channel groups of an already traced ``gm`` (with shapes); mixed ops' candidates get traced in place."""
    a = Analysis(rules, leaf_modules)
    a.run(gm)
    return a.finish(gm)


def channel_groups(model: nn.Module, example_inputs: Any, rules: RuleSet | None = None,
                   leaf_modules: Sequence[type] = ()) -> ChannelGroups:
    """The sets of channels of ``model`` that must shrink together, found from its fx graph.

    ``rules`` extends or replaces the default op rules (``fxnas.elastic.CHANNEL_RULES.child()``);
    ``leaf_modules`` are traced as single ops (each needs a rule). The model itself is not changed.
    """
    import copy

    gm = trace_for_analysis(copy.deepcopy(model), example_inputs, leaf_modules)
    return analyse(gm, rules, leaf_modules)


__all__ = ["Analysis", "NodeContext", "analyse", "channel_groups", "default_leaf_types", "trace_for_analysis"]

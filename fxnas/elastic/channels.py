"""Coupled-channel analysis: run the channel rules over a traced graph and find the groups of channels.

Each tensor's channel dim is tracked as segments of *sources* (a layer's output, the model input, a
constant). Rules link segments that must stay equal (a residual add), pin those that cannot shrink (the
model's input and output) and record which layers produce, pass or consume them. At the end sources are
cut into *atoms* wherever any segment starts or ends (cuts travel along links), atoms that are linked are
merged, and every merged set that some layer produces is a :class:`Group`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..graph import as_tuple, node_shape, propagate_shapes, symbolic_trace
from .groups import ChannelGroups, Group, LayerChannels, Member, SplitSite
from .layout import Layout, Seg
from .rules import CHANNEL_RULES, ChannelRuleError, RuleSet, find_rule, missing_rule_error, op_label, op_names, where


@dataclass
class _Use:
    path: str
    op: str
    role: str
    layout: Layout
    positions: int = 0


@dataclass
class _Source:
    length: int
    kind: str  # "layer" | "input" | "const"


def default_leaf_types() -> tuple[type, ...]:
    """Modules traced as single ops by the analysis: mixed ops (analysed per candidate), stochastic depth."""
    from torchvision.ops import StochasticDepth

    from ..candidates.mixed import MixedOp

    return (MixedOp, StochasticDepth)


class NodeContext:
    """What a channel rule sees of one node, and the actions it may take on the analysis."""

    def __init__(self, analysis: Analysis, gm: fx.GraphModule, node: fx.Node, prefix: str) -> None:
        self.analysis, self.gm, self.node, self.prefix = analysis, gm, node, prefix

    # --- reading the node ---------------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The module a call_module node runs."""
        return self.gm.get_submodule(self.node.target)

    @property
    def path(self) -> str:
        """The module's path from the analysed model's root."""
        return self.prefix + str(self.node.target)

    @property
    def op(self) -> str:
        """The op's registry name (module class or function name)."""
        return op_names(self.gm, self.node)[0]

    def arg(self, i: int, name: str | None = None, default: Any = None) -> Any:
        """Positional arg ``i`` (or keyword ``name``) of the node, as written in the graph."""
        if i < len(self.node.args):
            return self.node.args[i]
        return self.node.kwargs.get(name, default) if name else default

    def value(self, a: Any) -> Any:
        """The analysis value of a graph arg: a Layout, None (no channels), a tuple of those, or a constant."""
        if isinstance(a, fx.Node):
            return self.analysis.values.get(a)
        if isinstance(a, (tuple, list)):
            return type(a)(self.value(x) for x in a) if isinstance(a, tuple) else [self.value(x) for x in a]
        return a

    def layout(self, i: int = 0, name: str | None = None) -> Layout | None:
        """The Layout of arg ``i``, or None when it carries no channels."""
        v = self.value(self.arg(i, name))
        return v if isinstance(v, Layout) else None

    def shape(self, a: Any = None) -> tuple[int, ...] | None:
        """The recorded shape of a graph arg (default: of this node's output)."""
        n = self.node if a is None else a
        return node_shape(n) if isinstance(n, fx.Node) else None

    def where(self) -> str:
        """The user's source line of this node."""
        return where(self.node)

    # --- acting -------------------------------------------------------------------------------------
    def channels(self, i: int, dim: int, name: str | None = None) -> Layout:
        """Arg ``i``'s channels on axis ``dim``; channels of unknown origin become a fixed source."""
        a = self.arg(i, name)
        lay = self.layout(i, name)
        if lay is not None and lay.dim == dim:
            return lay
        if lay is not None:
            self.pin(lay, f"its channels (dim {lay.dim}) meet {self.op} over dim {dim}")
        shape = self.shape(a)
        if shape is None:
            raise self.fail(f"its input {i} has no recorded shape")
        return self.analysis.source(shape[dim], dim, "const", pinned=f"channels of unknown origin reach {self.op}",
                                    where=self.where())

    def produce(self, length: int, dim: int) -> Layout:
        """New channels computed by this layer (its output); a module called twice yields the same ones."""
        a = self.analysis
        use = a.uses.get((self.path, "out"))
        if use is None:
            lay = a.source(length, dim, "layer")
            use = a.uses[(self.path, "out")] = _Use(self.path, self.op, "out", lay)
        use.positions += self._positions(use.layout.dim)
        return use.layout

    def consume(self, layout: Layout) -> None:
        """This layer reads ``layout`` as its input channels."""
        self._record("in", layout)

    def through(self, layout: Layout) -> Layout:
        """Channels pass through this layer one to one (norms, depthwise convs); returns them."""
        self._record("through", layout)
        use = self.analysis.uses[(self.path, "through")]
        use.positions += self._positions(layout.dim)
        return use.layout

    def join(self, a: Layout, b: Layout) -> None:
        """``a`` and ``b`` are the same channels position by position (a residual add, a shared module)."""
        if a.channels != b.channels or a.inner != b.inner:
            raise self.fail(f"cannot join {a.channels}x{a.inner} channels with {b.channels}x{b.inner}")
        self.analysis.link(a, b)

    def pin(self, layout: Layout, reason: str) -> None:
        """These channels cannot shrink, because of ``reason`` (named with this node's source line)."""
        self.analysis.pin(layout, f"{reason} at {self.where()}")

    def split(self, dim: int, pieces: Sequence[Layout]) -> None:
        """This node splits the channel dim into ``pieces``: elasticize makes its sizes follow the widths."""
        self.analysis.splits.append((self.gm, self.node, dim, list(pieces)))

    def fail(self, reason: str) -> ChannelRuleError:
        """An error naming this op, its source line and ``reason``."""
        return ChannelRuleError(f"channel analysis of {op_label(self.gm, self.node)} at {self.where()}: {reason}")

    def _record(self, role: str, layout: Layout) -> None:
        key = (self.path, role)
        old = self.analysis.uses.get(key)
        if old is None:
            self.analysis.uses[key] = _Use(self.path, self.op, role, layout)
        else:
            self.join(old.layout, layout)

    def _positions(self, dim: int) -> int:
        shape = self.shape()
        if not shape or len(shape) < 2:
            return 1
        n = 1
        for i, s in enumerate(shape):
            if i not in (0, dim):
                n *= s
        return n


class Analysis:
    """The state of one coupled-channel analysis (sources, links, pins, layer uses, split sites)."""

    def __init__(self, rules: RuleSet | None = None, leaf_types: Sequence[type] = ()) -> None:
        self.rules = rules if rules is not None else CHANNEL_RULES
        self.leaf_types = tuple(leaf_types) + default_leaf_types()
        self.sources: list[_Source] = []
        self.links: list[tuple[Seg, Seg]] = []
        self.pins: list[tuple[Seg, str]] = []
        self.uses: dict[tuple[str, str], _Use] = {}
        self.splits: list[tuple[fx.GraphModule, fx.Node, int, list[Layout]]] = []
        self.values: dict[fx.Node, Any] = {}

    # --- primitives -------------------------------------------------------------------------------
    def source(self, length: int, dim: int, kind: str, pinned: str | None = None, where: str = "") -> Layout:
        """A new source of ``length`` channels on axis ``dim``; ``pinned`` says why it is fixed, if it is."""
        self.sources.append(_Source(length, kind))
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

    ``rules`` extends or replaces the default op rules (``fxnas.elastic.CHANNEL_RULES.scoped()``);
    ``leaf_modules`` are traced as single ops (each needs a rule). The model itself is not changed.
    """
    import copy

    gm = trace_for_analysis(copy.deepcopy(model), example_inputs, leaf_modules)
    return analyse(gm, rules, leaf_modules)


__all__ = ["Analysis", "NodeContext", "analyse", "channel_groups", "default_leaf_types", "trace_for_analysis"]

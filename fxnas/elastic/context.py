"""What a channel rule sees of one node (NodeContext) and the records it leaves on the analysis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch.fx as fx
from torch import nn

from ..graph import node_shape
from .layout import Layout
from .rules import ChannelRuleError, op_label, op_names, where

if TYPE_CHECKING:
    from .channels import Analysis


@dataclass
class Use:
    """A layer's use of channels: its path, op, role and the layout it sees."""

    path: str
    op: str
    role: str
    layout: Layout
    positions: int = 0


@dataclass
class Source:
    """Channels that start somewhere: a layer's output, the model input, a constant."""

    length: int
    kind: str  # "layer" | "input" | "const"


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
            use = a.uses[(self.path, "out")] = Use(self.path, self.op, "out", lay)
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
            self.analysis.uses[key] = Use(self.path, self.op, role, layout)
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

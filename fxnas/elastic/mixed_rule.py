"""The channel rule of searchify's mixed ops: each candidate is analysed on the op's input channels.

Every candidate reads the mixed op's input and produces its output, so the candidates' outputs are joined
into one group (as the branches of a residual add). Each candidate is traced in place into a GraphModule
so that elasticize can make its layers elastic too; the mixed op then picks among elastic candidates.
"""

from __future__ import annotations

from typing import Any

from ..mixed.base import MixedOp
from .context import NodeContext
from .layout import Layout
from .rules import CHANNEL_RULES


@CHANNEL_RULES.register("MixedOp")
def mixed_op(ctx: NodeContext) -> Any:
    """Analyse every candidate on the op's inputs; their outputs are the same channels."""
    op = ctx.module
    assert isinstance(op, MixedOp)
    inputs = [ctx.value(a) for a in ctx.node.args]
    shapes = [ctx.shape(a) for a in ctx.node.args]
    outs: list[tuple[str, Any]] = []
    for name in list(op.candidates.keys()):
        traced, out = ctx.analysis.run_module(op.candidates[name], f"{ctx.path}.candidates.{name}", inputs, shapes)
        op.candidates[name] = traced
        outs.append((name, out))
    lays = [(n, o) for n, o in outs if isinstance(o, Layout)]
    if not lays:
        return None
    main = lays[0][1]
    for _, other in lays[1:]:
        ctx.join(main, other)
    shape = ctx.shape()
    for name, o in outs:
        if not isinstance(o, Layout) and shape is not None and shape[main.dim] != 1:
            ctx.pin(main, f"candidate {name} of {ctx.path!r} gives a constant of fixed width")
    return main

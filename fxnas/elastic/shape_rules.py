"""Channel rules for indexing, reshapes, permutations, reductions and shape queries."""

from __future__ import annotations

import math
from typing import Any

import torch.fx as fx

from .context import NodeContext
from .layout import Layout
from .rules import CHANNEL_RULES

reg = CHANNEL_RULES.register


@reg("getitem")
def getitem(ctx: NodeContext) -> Any:
    """An element of a tuple (a split's piece); on a tensor, indexing that keeps the channel axis whole."""
    base, idx = ctx.value(ctx.arg(0)), ctx.arg(1)
    if isinstance(base, (tuple, list)):
        return base[idx] if isinstance(idx, int) else None
    if not isinstance(base, Layout):
        return None
    entries = idx if isinstance(idx, tuple) else (idx,)
    nd = len(ctx.shape(ctx.arg(0)))
    used = sum(1 for e in entries if e is not None and e is not Ellipsis)
    i = o = 0
    for e in entries:
        if e is None:
            o += 1
            continue
        if e is Ellipsis:
            span = nd - used
            if i <= base.dim < i + span:
                return base.at(o + base.dim - i)
            i, o = i + span, o + span
            continue
        if i == base.dim:
            if isinstance(e, slice) and e == slice(None):
                return base.at(o)
            ctx.pin(base, "indexing selects part of the channel axis")
            return None
        if isinstance(e, fx.Node) or not isinstance(e, (int, slice)):
            ctx.pin(base, "advanced indexing")
            return None
        i, o = i + 1, o + (0 if isinstance(e, int) else 1)
    return base.at(o + base.dim - i)


# --- reshapes -------------------------------------------------------------------------------------------
def _flatten(ctx: NodeContext, lay: Layout, shape: tuple[int, ...], start: int, end: int) -> Any:
    nd = len(shape)
    start, end = start % nd, end % nd
    if lay.dim < start:
        return lay
    if lay.dim > end:
        return lay.at(lay.dim - (end - start))
    if start < lay.dim:
        ctx.pin(lay, "flatten merges the channel axis with the axes before it")
        return None
    return Layout(start, lay.segs, lay.inner * math.prod(shape[lay.dim + 1:end + 1]))


@reg("flatten")
def flatten(ctx: NodeContext) -> Any:
    """Channels become features: each spans the flattened axes after it (``inner``)."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    return _flatten(ctx, lay, ctx.shape(ctx.arg(0)), ctx.arg(1, "start_dim", 0), ctx.arg(2, "end_dim", -1))


@reg("Flatten")
def flatten_module(ctx: NodeContext) -> Any:
    """nn.Flatten: as torch.flatten with the module's start and end dims."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    return _flatten(ctx, lay, ctx.shape(ctx.arg(0)), ctx.module.start_dim, ctx.module.end_dim)


def reshaped(lay: Layout, ins: tuple[int, ...], out: tuple[int, ...]) -> tuple[Layout, int] | None:
    """Where the channel axis lands when ``ins`` is viewed as ``out``: (layout, output axis), or None."""
    d, size = lay.dim, ins[lay.dim]
    before = math.prod(ins[:d])
    spreads, acc = [1], 1
    for s in ins[d + 1:]:
        acc *= s
        spreads.append(acc)
    acc = 1
    for e, s in enumerate(out):
        if acc == before:
            for r in spreads:
                if s == size * r:
                    return Layout(e, lay.segs, lay.inner * r), e
        acc *= s
    return None


@reg("view")
def view(ctx: NodeContext) -> Any:
    """A reshape that keeps the channel axis whole; a literal size on it fixes the width (it would break)."""
    lay = ctx.layout(0)
    ins, out = ctx.shape(ctx.arg(0)), ctx.shape()
    if lay is None or ins is None or out is None:
        return None
    found = reshaped(lay, ins, out)
    if found is None:
        ctx.pin(lay, f"{ctx.op} splits or reorders the channel axis {tuple(ins)} -> {tuple(out)}")
        return None
    new, axis = found
    sizes = ctx.node.args[1:]
    if ctx.node.op == "call_function" or (len(sizes) == 1 and isinstance(sizes[0], (tuple, list))):
        sizes = ctx.arg(1, "shape") if ctx.node.op == "call_function" else sizes[0]
    sizes = list(sizes) if isinstance(sizes, (tuple, list)) else []
    if axis < len(sizes) and isinstance(sizes[axis], int) and sizes[axis] != -1:
        ctx.pin(lay, f"{ctx.op} to the literal size {sizes[axis]} on the channel axis")
    return new


reg("reshape", obj=view)


def shape_change(ctx: NodeContext) -> Any:
    """squeeze/unsqueeze and friends: found from the shapes before and after."""
    lay = ctx.layout(0)
    ins, out = ctx.shape(ctx.arg(0)), ctx.shape()
    if lay is None or ins is None or out is None:
        return None
    found = reshaped(lay, ins, out)
    if found is None:
        ctx.pin(lay, f"{ctx.op} changes the channel axis")
        return None
    return found[0]


for _name in ("squeeze", "unsqueeze", "squeeze_", "unsqueeze_", "expand_as"):
    reg(_name, obj=shape_change)


@reg("permute")
def permute(ctx: NodeContext) -> Any:
    """The channel axis moves where the permutation puts it."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    dims = ctx.node.args[1:] if ctx.node.op == "call_method" else (ctx.arg(1, "dims"),)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    nd = len(ctx.shape(ctx.arg(0)))
    dims = [int(d) % nd for d in dims]
    return lay.at(dims.index(lay.dim))


@reg("transpose")
def transpose(ctx: NodeContext) -> Any:
    """Swapping two axes moves the channels if they are on one of them."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    nd = len(ctx.shape(ctx.arg(0)))
    a, b = ctx.arg(1, "dim0") % nd, ctx.arg(2, "dim1") % nd
    return lay.at(b if lay.dim == a else a if lay.dim == b else lay.dim)


# --- reductions and queries -----------------------------------------------------------------------------
def reduction(ctx: NodeContext) -> Any:
    """mean/sum/amax over some axes: the channels survive unless their axis is reduced."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    nd = len(ctx.shape(ctx.arg(0)))
    dims = ctx.arg(1, "dim")
    if dims is None:
        return None
    dims = {int(d) % nd for d in (dims if isinstance(dims, (tuple, list)) else (dims,))}
    if lay.dim in dims:
        return None  # reduced over the channels: what remains has none
    keep = ctx.arg(2, "keepdim", False)
    return lay if keep else lay.at(lay.dim - sum(1 for d in dims if d < lay.dim))


for _name in ("mean", "sum", "amax", "amin", "std", "var", "logsumexp"):
    reg(_name, obj=reduction)


def no_channels(ctx: NodeContext) -> None:
    """Queries of a tensor (its size, shape, dim...) carry no channels."""
    return None


for _name in ("size", "dim", "numel", "getattr", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"):
    reg(_name, obj=no_channels)

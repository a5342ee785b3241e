"""Channel rules for torch layers, elementwise ops, concatenation and splits (registered in CHANNEL_RULES)."""

from __future__ import annotations

from typing import Any

import torch.fx as fx

from .context import NodeContext
from .layout import Layout, concat
from .rules import CHANNEL_RULES

reg = CHANNEL_RULES.register


# --- layers that start groups ------------------------------------------------------------------------
def conv(ctx: NodeContext) -> Layout:
    """Output channels start a group; a depthwise conv passes them; a grouped conv couples per group."""
    m = ctx.module
    lay = ctx.channels(0, dim=1)
    if lay.channels * lay.inner != m.in_channels or lay.inner != 1:
        raise ctx.fail(f"expects {m.in_channels} input channels, the analysis has {lay.channels}x{lay.inner}")
    g = m.groups
    if g > 1 and g == m.in_channels == m.out_channels:
        return ctx.through(lay)
    if g > 1:  # each group of the input shrinks alike, and so does each group of the output
        chunks = lay.chunks(g)
        for c in chunks[1:]:
            ctx.join(chunks[0], c)
    ctx.consume(lay)
    out = ctx.produce(m.out_channels, 1)
    if g > 1:
        chunks = out.chunks(g)
        for c in chunks[1:]:
            ctx.join(chunks[0], c)
    return out


for _name in ("Conv1d", "Conv2d", "Conv3d"):
    reg(_name, obj=conv)


@reg("Linear")
def linear(ctx: NodeContext) -> Layout:
    """Output features start a group; input features are the last axis (after a flatten: channels x spatial)."""
    m = ctx.module
    nd = len(ctx.shape(ctx.arg(0)) or (0, 0))
    lay = ctx.channels(0, dim=nd - 1)
    if lay.channels * lay.inner != m.in_features:
        raise ctx.fail(f"expects {m.in_features} input features, the analysis has {lay.channels}x{lay.inner}")
    ctx.consume(lay)
    return ctx.produce(m.out_features, nd - 1)


# --- layers channels pass through ----------------------------------------------------------------------
@reg("_BatchNorm")
def batch_norm(ctx: NodeContext) -> Layout:
    """One statistic and one affine pair per channel: channels pass through."""
    return ctx.through(ctx.channels(0, dim=1))


@reg("LayerNorm")
def layer_norm(ctx: NodeContext) -> Any:
    """Over the channel axis (the last): channels pass through; over other axes it does not touch them."""
    m = ctx.module
    lay = ctx.layout(0)
    nd = len(ctx.shape(ctx.arg(0)) or ())
    if lay is None:
        return None
    if lay.dim < nd - len(m.normalized_shape):
        return lay  # normalises axes after the channels: its weights do not depend on the width
    if len(m.normalized_shape) == 1 and lay.dim == nd - 1:
        return ctx.through(lay)
    ctx.pin(lay, f"LayerNorm{tuple(m.normalized_shape)} normalises the channel axis together with others")
    return lay


@reg("GroupNorm")
def group_norm(ctx: NodeContext) -> Layout:
    """Channels pass through; every group of the norm keeps the same number."""
    lay = ctx.channels(0, dim=1)
    chunks = lay.chunks(ctx.module.num_groups)
    for c in chunks[1:]:
        ctx.join(chunks[0], c)
    return ctx.through(lay)


# --- ops that keep the channel axis --------------------------------------------------------------------
def passthrough(ctx: NodeContext) -> Any:
    """Elementwise or spatial ops: the output has the input's channels on the same axis."""
    lay = ctx.layout(0)
    if lay is None:
        return None
    ins, out = ctx.shape(ctx.arg(0)), ctx.shape()
    if ins is None or out is None or len(ins) != len(out) or ins[lay.dim] != out[lay.dim]:
        ctx.pin(lay, f"{ctx.op} changes the channel axis")
        return None
    return lay


PASS_MODULES = ("ReLU", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "SiLU", "GELU", "Sigmoid", "Tanh",
                "LeakyReLU", "ELU", "SELU", "CELU", "Mish", "Softplus", "Softmax", "LogSoftmax", "Identity",
                "_DropoutNd", "_MaxPoolNd", "_AvgPoolNd", "_AdaptiveAvgPoolNd", "_AdaptiveMaxPoolNd", "Upsample",
                "StochasticDepth", "ZeroPad2d", "ConstantPadNd", "ReflectionPad2d", "ReplicationPad2d")
PASS_FUNCTIONS = ("relu", "relu_", "relu6", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "silu",
                  "silu_", "gelu", "sigmoid", "sigmoid_", "tanh", "tanh_", "leaky_relu", "elu", "mish", "softplus",
                  "hardtanh", "softmax", "log_softmax", "dropout", "dropout1d", "dropout2d", "alpha_dropout",
                  "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
                  "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d",
                  "max_pool3d", "interpolate", "upsample", "pad", "contiguous", "clone", "detach", "to", "float",
                  "half", "double", "type_as", "abs", "neg", "exp", "log", "sqrt", "rsqrt", "square", "erf",
                  "reciprocal", "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like",
                  "full_like", "requires_grad_", "cpu", "cuda")
for _name in PASS_MODULES + PASS_FUNCTIONS:
    reg(_name, obj=passthrough)


# --- ops that combine tensors ----------------------------------------------------------------------------
def elementwise(ctx: NodeContext) -> Any:
    """add/sub/mul/div and friends: operands with channels are joined (residual add, squeeze-excite mul).

    An operand that broadcasts on the channel axis (size 1) does not constrain it; a constant or
    parameter tensor of full channel size fixes the width.
    """
    out = ctx.shape()
    if out is None:
        return None
    nd = len(out)
    joined: list[Layout] = []
    fixed: list[str] = []
    args = list(ctx.node.args) + list(ctx.node.kwargs.values())
    tensors = [a for a in args if isinstance(a, fx.Node) and ctx.shape(a) is not None]
    for a in tensors:
        v, shape = ctx.value(a), ctx.shape(a)
        if isinstance(v, Layout):
            d = v.dim + nd - len(shape)
            if shape[v.dim] == 1 and out[d] != 1:
                ctx.pin(v, f"{ctx.op} broadcasts it over the channels of another operand")
                continue
            joined.append(v.at(d))
        else:
            fixed.append(a.name)
    if not joined:
        return None
    main = joined[0]
    for other in joined[1:]:
        if other.dim != main.dim:
            raise ctx.fail(f"operands have their channels on different axes ({main.dim} and {other.dim})")
        ctx.join(main, other)
    for a in tensors:
        v, shape = ctx.value(a), ctx.shape(a)
        if not isinstance(v, Layout):
            d = main.dim - (nd - len(shape))
            if 0 <= d < len(shape) and shape[d] != 1:
                ctx.pin(main, f"{ctx.op} with the fixed-size tensor {a.name!r}")
    return main


for _name in ("add", "add_", "iadd", "sub", "sub_", "isub", "rsub", "mul", "mul_", "imul", "truediv", "div",
              "div_", "itruediv", "floordiv", "pow", "maximum", "minimum", "clamp", "clamp_", "clamp_min",
              "clamp_max", "masked_fill", "bernoulli_", "neg_"):
    reg(_name, obj=elementwise)


@reg("cat")
def cat(ctx: NodeContext) -> Any:
    """On the channel axis, inputs' channels follow one another (at offsets); on another axis, they join."""
    tensors = ctx.arg(0, "tensors")
    out = ctx.shape()
    if out is None:
        return None
    dim = ctx.arg(1, "dim", 0) % len(out)
    vals = [ctx.value(t) for t in tensors]
    lays = [v for v in vals if isinstance(v, Layout)]
    if not lays:
        return None
    cdim = lays[0].dim
    if dim != cdim:
        for other in lays[1:]:
            ctx.join(lays[0], other)
        return lays[0]
    inner = lays[0].inner
    parts = []
    for t, v in zip(tensors, vals):
        if isinstance(v, Layout) and v.dim == cdim and v.inner == inner:
            parts.append(v)
        else:
            if isinstance(v, Layout):
                ctx.pin(v, "concatenated with channels of another layout")
            size = ctx.shape(t)[dim] // inner
            parts.append(ctx.analysis.source(size, cdim, "const", "a constant concatenated on the channel axis",
                                             ctx.where()))
    return concat(parts, cdim).with_inner(inner)


reg("concat", obj=cat)
reg("concatenate", obj=cat)


@reg("stack")
def stack(ctx: NodeContext) -> Any:
    """A new axis: the inputs' channels are joined and move by one if the new axis comes before them."""
    tensors = ctx.arg(0, "tensors")
    out = ctx.shape()
    lays = [v for v in (ctx.value(t) for t in tensors) if isinstance(v, Layout)]
    if not lays or out is None:
        return None
    for other in lays[1:]:
        ctx.join(lays[0], other)
    dim = ctx.arg(1, "dim", 0) % len(out)
    return lays[0].at(lays[0].dim + (1 if dim <= lays[0].dim else 0))


def split(ctx: NodeContext) -> Any:
    """Along the channel axis the pieces are slices of the input's channels (their sizes follow the widths)."""
    lay = ctx.layout(0)
    metas = ctx.node.meta.get("tensor_meta")
    if not isinstance(metas, (tuple, list)):
        return None
    if lay is None:
        return tuple(None for _ in metas)
    nd = len(ctx.shape(ctx.arg(0)))
    dim = ctx.arg(2, "dim", 0) % nd
    if dim != lay.dim:
        return tuple(lay for _ in metas)
    sizes = [int(m.shape[dim]) for m in metas]
    if any(s % lay.inner for s in sizes):
        ctx.pin(lay, "a split cuts through the features of one channel")
        return tuple(None for _ in metas)
    pieces, pos = [], 0
    for s in sizes:
        pieces.append(lay.slice(pos, s // lay.inner))
        pos += s // lay.inner
    ctx.split(dim, pieces)
    return tuple(pieces)


reg("split", obj=split)
reg("chunk", obj=split)
reg("tensor_split", obj=split)

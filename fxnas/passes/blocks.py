"""Block patterns recognised by structure, not by class: a residual block is a module whose forward adds a
shortcut (its input, or at most one conv of it) to a stack of two or more convs; an inverted residual is a
module whose convs are [1x1 expand] -> one depthwise -> [squeeze-excite] -> 1x1 project. torchvision's,
timm's and EfficientNet-Lite's blocks all have these shapes, whatever their classes are called.

The tracer asks modules outermost first, so the first module with a block's structure becomes the leaf and
its inner modules are never asked; a container holding a single child defers to that child.
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
from torch import nn

_ADDS = {operator.add, operator.iadd, torch.add}
_MAX_BLOCK_CONVS = 12  # a block is small; larger modules are stages or models (and are not traced to check)


def _convs(m: nn.Module) -> list[nn.Conv2d]:
    return [c for c in m.modules() if isinstance(c, nn.Conv2d)]


def _is_dw(c: nn.Conv2d) -> bool:
    return c.groups > 1 and c.groups == c.in_channels and tuple(c.kernel_size) != (1, 1)


def _is_pw(c: nn.Conv2d) -> bool:
    return c.groups == 1 and tuple(c.kernel_size) == (1, 1)


def _candidate(m: nn.Module) -> list[nn.Conv2d] | None:
    """The module's convs when it may be a block (not a conv itself, not a one-child wrapper, small)."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return None
    if isinstance(m, (nn.Sequential, nn.ModuleList)) and len(m) == 1:
        return None
    convs = _convs(m)
    return convs if 2 <= len(convs) <= _MAX_BLOCK_CONVS else None


def is_inverted_residual(m: nn.Module) -> bool:
    """[1x1 expand to C] -> one depthwise conv over C -> [SE convs] -> a last 1x1 conv projecting from C."""
    convs = _candidate(m)
    if convs is None:
        return False
    dws = [i for i, c in enumerate(convs) if _is_dw(c)]
    if len(dws) != 1:
        return False
    i = dws[0]
    dw, before, last = convs[i], convs[:i], convs[-1]
    if len(before) > 1 or (before and not (_is_pw(before[0]) and before[0].out_channels == dw.in_channels)):
        return False
    return last is not dw and _is_pw(last) and last.in_channels == dw.out_channels


def _conv_count(node: fx.Node, gm: fx.GraphModule, stop: set[fx.Node]) -> int:
    """Conv modules on the paths from ``node`` back to the inputs (``stop``)."""
    seen, todo, n = set(), [node], 0
    while todo:
        cur = todo.pop()
        if cur in seen or cur in stop:
            continue
        seen.add(cur)
        if cur.op == "call_module" and isinstance(gm.get_submodule(cur.target), nn.Conv2d):
            n += 1
        todo.extend(a for a in cur.all_input_nodes)
    return n


def _residual_add(gm: fx.GraphModule) -> bool:
    """True when the module's output is (an activation of) shortcut + conv stack."""
    inputs = {n for n in gm.graph.nodes if n.op == "placeholder"}
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    while isinstance(out, fx.Node) and not _is_add(out) and len(out.all_input_nodes) == 1:
        out = out.all_input_nodes[0]  # through the final activation / drop path
    if not (isinstance(out, fx.Node) and _is_add(out)) or len(out.all_input_nodes) != 2:
        return False
    a, b = sorted(_conv_count(x, gm, inputs) for x in out.all_input_nodes)
    return a <= 1 and b >= 2


def _is_add(n: fx.Node) -> bool:
    return (n.op == "call_function" and n.target in _ADDS) or (n.op == "call_method" and n.target in ("add", "add_"))


def is_residual_block(m: nn.Module) -> bool:
    """A residual add around a stack of two or more non-depthwise convs (basic and bottleneck blocks)."""
    convs = _candidate(m)
    if convs is None or any(_is_dw(c) for c in convs):
        return False
    try:
        gm = fx.symbolic_trace(m)
    except Exception:  # a module fx cannot trace alone is not recognised (its parts still are)
        return False
    return _residual_add(gm)


__all__ = ["is_inverted_residual", "is_residual_block"]

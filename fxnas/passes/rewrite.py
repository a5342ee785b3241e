"""The rewrite pass: every module a pattern matches becomes a Slot recording what it needed."""

from __future__ import annotations

from collections import Counter

import torch.fx as fx

from ..errors import PatternError
from ..graph import input_shape, node_shape
from ..slot import Slot, spec_from_module
from ..supernet import replace_submodule
from .patterns import PatternLike, resolve_pattern


def rewrite(gm: fx.GraphModule, pattern: PatternLike, allow_empty: bool = False) -> list[str]:
    """Replace every module matched by ``pattern`` with a Slot in place; returns the slot paths in graph order."""
    pat = resolve_pattern(pattern)
    found: list[str] = []
    seen: set[str] = set()
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in seen:
            continue
        mod = gm.get_submodule(node.target)
        if isinstance(mod, Slot) or not pat.matches(gm, node):
            continue
        seen.add(node.target)
        spec = spec_from_module(mod, input_shape(node), node_shape(node), name=node.target)
        replace_submodule(gm, node.target, Slot(spec))
        found.append(node.target)
    if not found and not allow_empty:
        counts = Counter(type(gm.get_submodule(n.target)).__name__ for n in gm.graph.nodes if n.op == "call_module")
        have = ", ".join(f"{k} x{v}" for k, v in counts.most_common(8)) or "no modules"
        raise PatternError(f"pattern {pat.name!r} matched nothing in this model (it has {have}); "
                           f"try another pattern, e.g. conv, dwconv, pwconv, linear, or a predicate")
    gm.recompile()
    return found

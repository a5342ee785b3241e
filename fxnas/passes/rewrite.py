"""The rewrite pass: every module a pattern matches becomes a Slot recording what it needed."""

from __future__ import annotations

import warnings
from collections import Counter
from functools import reduce

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import HiddenByLeafWarning, PatternError, WeightsReadWarning
from ..graph import input_shape, node_shape
from ..slot import Slot, SlotSpec, spec_from_module
from ..supernet import replace_submodule
from .patterns import Pattern, PatternLike, resolve_pattern
from .subgraphs import GraphPattern, fuse


def rewrite(gm: fx.GraphModule, pattern: PatternLike, allow_empty: bool = False) -> list[str]:
    """Replace every module matched by ``pattern`` with a Slot in place; returns the slot paths in graph order."""
    pat = resolve_pattern(pattern)
    if isinstance(pat, GraphPattern):
        return _rewrite_subgraphs(gm, pat, allow_empty)
    found: list[str] = []
    seen: set[str] = set()
    read: list[str] = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in seen:
            continue
        mod = gm.get_submodule(node.target)
        if isinstance(mod, Slot) or not pat.matches(gm, node):
            continue
        seen.add(node.target)
        if not _stand_in_for_metadata_reads(gm, node.target):
            read.append(node.target)
            continue
        spec = spec_from_module(mod, input_shape(node), node_shape(node), name=node.target)
        replace_submodule(gm, node.target, Slot(spec))
        found.append(node.target)
    _warn_hidden(gm, pat)
    if read:
        warnings.warn(WeightsReadWarning(
            f"{len(read)} module(s) that pattern {pat.name!r} selects stay as they are: the forward reads their "
            f"weights outside their call ({', '.join(read[:5])}); a slot's candidates could not provide them"),
            stacklevel=2)
    if not found and not allow_empty:
        counts = Counter(type(gm.get_submodule(n.target)).__name__ for n in gm.graph.nodes if n.op == "call_module")
        have = ", ".join(f"{k} x{v}" for k, v in counts.most_common(8)) or "no modules"
        raise PatternError(f"pattern {pat.name!r} matched nothing in this model (it has {have}); "
                           f"try another pattern, e.g. conv, dwconv, pwconv, linear, or a predicate")
    gm.recompile()
    return found


def hidden_by_leaves(gm: fx.GraphModule, pattern: PatternLike) -> dict[str, list[str]]:
    """Leaf path → the paths of modules inside it that ``pattern`` selects: what no slot can reach.

    A leaf is a module the trace kept as one call (timm's not-trace registry, a user's ``leaf_modules``, a
    block fx cannot trace); its convs and linears run inside that call, invisible to the rewrite.
    """
    pat = resolve_pattern(pattern)
    if isinstance(pat, GraphPattern):
        return {}
    out: dict[str, list[str]] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in out:
            continue
        leaf = gm.get_submodule(node.target)
        if isinstance(leaf, Slot) or type(leaf).__module__.startswith(("torch.", "fxnas.")):
            continue
        inner = [f"{node.target}.{n}" for n, m in leaf.named_modules() if n and _selects(pat, m)]
        if inner and not _selects(pat, leaf):
            out[str(node.target)] = inner
    return out


def _selects(pat: Pattern, m: nn.Module) -> bool:
    try:
        return pat.selects(m)
    except Exception:  # a user predicate that needs a graph node: it cannot judge a module alone
        return False


def _warn_hidden(gm: fx.GraphModule, pat: PatternLike) -> None:
    hidden = hidden_by_leaves(gm, pat)
    if hidden:
        rows = "; ".join(f"{p} ({type(gm.get_submodule(p)).__name__}): {len(v)}" for p, v in hidden.items())
        warnings.warn(HiddenByLeafWarning(
            f"{sum(map(len, hidden.values()))} module(s) that pattern {pat.name!r} selects sit inside trace leaves "
            f"and get no slot, per leaf: {rows}. To search them, trace those modules through: drop them from "
            f"leaf_modules / leaf_rules (fxnas.leaves.LEAF_RULES), or make their forward traceable"),
            stacklevel=3)


_METADATA = ("dtype", "device")


def _stand_in_for_metadata_reads(gm: fx.GraphModule, path: str) -> bool:
    """Let the module at ``path`` leave the graph; False (nothing changed) when its tensors are read as values.

    A forward that reads only ``self.conv.weight.dtype``/``.device`` (timm's XCiT positional encoding) gets a
    zero-size buffer of the same dtype and device in the weight's place, which follows ``.to()`` as the weight
    did; a module whose weights are read as values is left in place (a slot's candidates may have none).
    """
    reads = [n for n in gm.graph.nodes if n.op == "get_attr" and str(n.target).startswith(path + ".")]
    if any(u.op != "call_function" or u.target is not getattr or u.args[1] not in _METADATA
           for n in reads for u in n.users):
        return False
    for n in reads:
        t = reduce(getattr, str(n.target).split("."), gm)
        stem = str(n.target).replace(".", "_") + "_meta"
        name, i = stem, 1
        while hasattr(gm, name):
            name, i = f"{stem}_{i}", i + 1
        gm.register_buffer(name, torch.empty(0, dtype=t.dtype, device=t.device))
        n.target = name
    return True


def _slot_name(gm: fx.GraphModule, nodes: list[fx.Node], pattern: str) -> str:
    """A root attribute named after the modules the subgraph calls (their common path), unique in ``gm``."""
    paths = [str(n.target).split(".") for n in nodes if n.op in ("call_module", "get_attr")]
    common: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    stem = "_".join(common[:-1] if paths and len(common) == min(map(len, paths)) else common) or pattern
    name, i = stem, 1
    while hasattr(gm, name):
        name, i = f"{stem}_{i}", i + 1
    return name


def _module_path(gm: fx.GraphModule, nodes: list[fx.Node], flat: str) -> str:
    """The path of the module the matched nodes came from when nothing left in the graph uses it, else ``flat``."""
    paths = [str(n.target) for n in nodes if n.op == "call_module"]
    common = paths[0].split(".")[:-1] if paths else []
    for p in paths[1:]:
        parts = p.split(".")
        while common and parts[:len(common)] != common:
            common = common[:-1]
    path = ".".join(common)
    if not path:
        return flat
    inside = path + "."
    if any(n.op in ("call_module", "get_attr") and (str(n.target) == path or str(n.target).startswith(inside))
           for n in gm.graph.nodes):
        return flat
    return path


def _graph_spec(sub: fx.GraphModule, call: fx.Node, name: str) -> SlotSpec:
    ins = [a for a in call.args if isinstance(a, fx.Node)]
    spec = spec_from_module(sub, node_shape(ins[0]) if ins else None, node_shape(call), name=name)
    mods = [sub.get_submodule(n.target) for n in sub.graph.nodes if n.op == "call_module"]
    first = mods[0] if mods else None
    if first is not None:  # the first layer's geometry (a conv-bn-act slot is that conv's slot)
        spec = spec_from_module(first, spec.in_shape, spec.out_shape, name=name).with_(original=sub)
        if spec.out_shape and len(spec.out_shape) > 1:  # what the whole subgraph produces
            spec.out_channels = spec.out_shape[-1 if isinstance(first, nn.Linear) else 1]
    elif (w := _functional_weight(sub)) is not None and w.dim() > 2:  # F.convNd: geometry from the weight
        call_fn = next(n for n in sub.graph.nodes if n.op == "call_function" and n.target in _CONVS)
        groups = int(call_fn.kwargs.get("groups", call_fn.args[6] if len(call_fn.args) > 6 else 1))
        stride = call_fn.kwargs.get("stride", call_fn.args[3] if len(call_fn.args) > 3 else 1)
        spec = spec.with_(in_channels=int(w.shape[1]) * groups, out_channels=int(w.shape[0]),
                          kernel_size=int(w.shape[2]), groups=groups,
                          stride=int(stride[0] if isinstance(stride, (tuple, list)) else stride))
    return spec.with_(inputs=tuple(a.name for a in ins))


_CONVS = {F.conv1d, F.conv2d, F.conv3d}


def _functional_weight(sub: fx.GraphModule) -> torch.Tensor | None:
    """The weight a functional-call subgraph reads (its first get_attr), if any."""
    attr = next((n for n in sub.graph.nodes if n.op == "get_attr"), None)
    if attr is None or not any(u.op == "call_function" and u.target in _CONVS for u in attr.users):
        return None
    return sub.get_parameter(attr.target) if isinstance(attr.target, str) else None


def _rewrite_subgraphs(gm: fx.GraphModule, pat: GraphPattern, allow_empty: bool) -> list[str]:
    """Fuse each match of a graph pattern into one GraphModule and put a Slot over it."""
    found: list[str] = []
    for nodes in pat.find(gm):
        name = _slot_name(gm, nodes, pat.name)
        outs = tuple(n.name for n in nodes[-1:])
        sub, call = fuse(gm, nodes, name)
        sub.train(gm.training)  # a new GraphModule starts in training mode; the slot follows the model
        path = _module_path(gm, nodes, name)
        spec = _graph_spec(sub, call, path).with_(outputs=outs)
        if path != name:  # the match is all of one module (an attention block): the slot takes its place
            delattr(gm, name)
            call.target = path
        replace_submodule(gm, path, Slot(spec))
        found.append(path)
    if not found and not allow_empty:
        raise PatternError(f"pattern {pat.name!r} matched no subgraph in this model ({pat.doc}); "
                           f"try a module pattern (conv, linear, ...) or another graph pattern")
    gm.graph.lint()
    gm.recompile()
    return found

"""Graph patterns: slots over functional calls (``F.conv2d``, ``F.linear``, ``torch.matmul`` with their weights)
and over subgraphs matched by structure with torch.fx's SubgraphMatcher (conv -> norm -> act, a transformer
MLP). Each match becomes one Slot whose original is the matched subgraph as a GraphModule (``ORIG``).

A pattern is a chain of roles; a role is a predicate on a graph node, so one pattern matches a model that
writes ``nn.Conv2d`` and one that calls ``F.conv2d``. Dropout and identity nodes between roles are passed
over (timm's ``Mlp`` has ``drop1`` and an ``Identity`` norm between its linears): the matcher runs on a view
of the graph without them, and each match's region in the real graph takes them in.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.utils.fuser_utils import fuse_as_graphmodule, insert_subgm, validate_partition
from torch.fx.passes.utils.matcher_utils import InternalMatch, SubgraphMatcher

Role = Callable[[fx.Node], bool]

_ACT_MODULES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.LeakyReLU, nn.Mish, nn.ELU, nn.Tanh,
                nn.Sigmoid, nn.Hardsigmoid, nn.PReLU, nn.SELU, nn.CELU)
_ACT_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.silu, F.gelu, F.hardswish, F.leaky_relu, F.mish, F.elu,
                  torch.tanh, torch.sigmoid, F.hardsigmoid, F.selu, F.celu}
_ACT_METHODS = {"relu", "relu_", "sigmoid", "tanh"}
_NORM_MODULES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
_NORM_FUNCTIONS = {F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm}
_CONV_FUNCTIONS = {F.conv1d, F.conv2d, F.conv3d}
_PASS = (nn.Dropout, nn.Identity)


def _module(n: fx.Node) -> nn.Module | None:
    return n.graph.owning_module.get_submodule(n.target) if n.op == "call_module" else None


def module_or_function(types: tuple[type, ...], functions: set[Callable[..., object]],
                       methods: set[str] = frozenset()) -> Role:  # type: ignore[assignment]
    """A role matching a call of a module of ``types``, of one of ``functions``, or of a tensor method."""

    def role(n: fx.Node) -> bool:
        if n.op == "call_module":
            return isinstance(_module(n), types)
        if n.op == "call_function":
            return n.target in functions
        return n.op == "call_method" and n.target in methods

    return role


conv = module_or_function((nn.modules.conv._ConvNd,), _CONV_FUNCTIONS)
norm = module_or_function(_NORM_MODULES, _NORM_FUNCTIONS)
act = module_or_function(_ACT_MODULES, _ACT_FUNCTIONS, _ACT_METHODS)
linear = module_or_function((nn.Linear,), {F.linear})


def norm_act(n: fx.Node) -> bool:
    """A norm layer that applies its activation itself (timm's BatchNormAct2d: a BatchNorm2d with ``act``)."""
    m = _module(n)
    return isinstance(m, _NORM_MODULES) and isinstance(getattr(m, "act", None), _ACT_MODULES)


def _passes_through(n: fx.Node) -> bool:
    if n.op == "call_module":
        return isinstance(_module(n), _PASS)
    return n.op == "call_function" and n.target in (F.dropout, torch.dropout)


def _data_input(n: fx.Node) -> fx.Node | None:
    first = n.args[0] if n.args else None
    return first if isinstance(first, fx.Node) else None


def _role_target(x: object) -> object:  # the pattern graph's stand-in callee; roles decide what matches
    return x


class _RoleMatcher(SubgraphMatcher):
    """SubgraphMatcher whose pattern nodes are roles on their data input (first argument), not exact calls."""

    def _nodes_are_equal(self, pn: fx.Node, gn: fx.Node, node_name_match: str = "") -> bool:
        role = pn.meta.get("role")
        return role(gn) if role is not None else super()._nodes_are_equal(pn, gn, node_name_match)

    def _match_nodes(self, pn: fx.Node, gn: fx.Node, match: InternalMatch, node_name_match: str = "") -> bool:
        role = pn.meta.get("role")
        if role is None:
            return super()._match_nodes(pn, gn, match, node_name_match)
        if pn in match.nodes_map:
            return match.nodes_map[pn] == gn
        if gn in match.nodes_map.values() or not role(gn):
            return False
        match.nodes_map[pn] = gn
        data = _data_input(gn)
        if data is None or not self._match_nodes(pn.args[0], data, match):
            del match.nodes_map[pn]
            return False
        return True

    def _is_contained(self, nodes_map: dict[fx.Node, fx.Node]) -> bool:
        return True  # checked on the whole region (passed-over nodes included) by region()


def _without_pass_through(gm: fx.GraphModule) -> fx.GraphModule:
    """A view of ``gm`` (same modules, same node names) with dropout and identity nodes bypassed, so a chain
    of roles matches across them; matches are mapped back to ``gm`` by node name."""
    g = fx.Graph()
    g.graph_copy(gm.graph, {})
    view = fx.GraphModule(gm, g)
    for n in list(view.graph.nodes):
        if _passes_through(n) and _data_input(n) is not None:
            n.replace_all_uses_with(_data_input(n))
            view.graph.erase_node(n)
    return view


def chain(roles: Sequence[Role]) -> fx.Graph:
    """The pattern graph x -> roles[0] -> ... -> roles[-1]."""
    g = fx.Graph()
    x = g.placeholder("x")
    for r in roles:
        x = g.call_function(_role_target, (x,))
        x.meta["role"] = r
    g.output(x)
    return g


def region(inputs: Sequence[fx.Node], outputs: Sequence[fx.Node]) -> list[fx.Node] | None:
    """The nodes between ``inputs`` and ``outputs`` (with the weights they read), or None when an inner
    node is used outside (the subgraph would not be replaceable as one call)."""
    fwd, todo = set(), list(inputs)
    while todo:
        n = todo.pop()
        for u in n.users:
            if u not in fwd:
                fwd.add(u)
                todo.append(u)
    back, todo = set(), list(outputs)
    while todo:
        n = todo.pop()
        if n in back or n in inputs:
            continue
        back.add(n)
        todo.extend(n.all_input_nodes)
    nodes = (fwd & back) | set(outputs)
    inside = nodes | set(inputs)
    nodes |= {n for n in fwd - nodes if not n.users and n.op != "output"  # dead ends (an unused ``C`` of x.shape)
              and all(a in inside for a in n.all_input_nodes)}
    for n in list(nodes):
        for a in n.all_input_nodes:
            if a.op == "get_attr":
                nodes.add(_own_get_attr(a, n, nodes))
    if any(u not in nodes for n in nodes if n not in outputs for u in n.users):
        return None
    order = {n: i for i, n in enumerate(next(iter(nodes)).graph.nodes)}
    found = sorted(nodes, key=order.__getitem__)
    return found if validate_partition(found) else None


def _own_get_attr(attr: fx.Node, user: fx.Node, nodes: set[fx.Node]) -> fx.Node:
    """``attr`` if only the region reads it, else a fresh get_attr of the same weight for ``user`` (a weight
    shared with code outside stays one parameter, read by both)."""
    if all(u in nodes for u in attr.users):
        return attr
    with user.graph.inserting_before(user):
        own = user.graph.get_attr(attr.target)
    own.meta = dict(attr.meta)
    user.replace_input_with(attr, own)
    return own


@dataclass
class GraphPattern:
    """A pattern over graph nodes rather than modules: ``find(gm)`` returns each match's nodes in order."""

    name: str
    alternatives: tuple[fx.Graph, ...] = ()
    doc: str = ""
    leaf_types: tuple[type, ...] = ()

    def find(self, gm: fx.GraphModule) -> list[list[fx.Node]]:
        """Non-overlapping matches, each the node list of one self-contained subgraph, in graph order."""
        used: set[fx.Node] = set()
        found: list[list[fx.Node]] = []
        view = _without_pass_through(gm)
        orig = {n.name: n for n in gm.graph.nodes}
        for g in self.alternatives:
            for m in _RoleMatcher(g).match(view.graph):
                nodes = region([orig[n.name] for n in m.placeholder_nodes], [orig[n.name] for n in m.returning_nodes])
                if nodes and not used.intersection(nodes):
                    used.update(nodes)
                    found.append(nodes)
        order = {n: i for i, n in enumerate(gm.graph.nodes)}
        return sorted(found, key=lambda ns: order[ns[-1]])

    def selects(self, module: nn.Module) -> bool:  # graph patterns keep no extra leaves
        return False

    def keeps_whole(self, module: nn.Module, qualname: str) -> bool:
        return False


class FunctionalPattern(GraphPattern):
    """Calls of given functions (``F.conv2d``, ``F.linear``, ``torch.matmul``) with the weights they read.

    A call qualifies when exactly one of its tensor arguments is data and the others are the model's weights
    (get_attr): ``x @ self.w`` does, ``q @ k`` (two activations) does not.
    """

    def __init__(self, name: str, functions: set[Callable[..., object]], doc: str) -> None:
        super().__init__(name, (), doc)
        self.functions = functions

    def find(self, gm: fx.GraphModule) -> list[list[fx.Node]]:
        found = []
        for n in gm.graph.nodes:
            if n.op == "call_function" and n.target in self.functions:
                data = [a for a in n.all_input_nodes if a.op != "get_attr"]
                if len(data) != 1 or len(n.all_input_nodes) < 2:
                    continue  # a slot has one data input; the rest are the weights it owns
                nodes = region(data, [n]) if data else None
                if nodes:
                    found.append(nodes)
        return found


def _is_core(n: fx.Node) -> bool:
    """Where attention happens: fused SDPA, or a softmax over scores a matmul made."""
    if n.op == "call_function" and n.target is F.scaled_dot_product_attention:
        return True
    soft = (n.op == "call_function" and n.target in (F.softmax, torch.softmax)) or \
        (n.op == "call_method" and n.target == "softmax") or \
        (n.op == "call_module" and isinstance(_module(n), nn.Softmax))
    return soft and _reaches(n, lambda a: (a.op == "call_function" and a.target in (torch.matmul, operator.matmul,
                                                                                       torch.bmm)) or
                             (a.op == "call_method" and a.target in ("matmul", "bmm")), back=True)


def _is_shape_read(n: fx.Node) -> bool:
    """``x.shape`` / ``x.size()``: metadata, not data flow (a reshape's sizes do not make x an operand)."""
    return (n.op == "call_function" and n.target is getattr) or (n.op == "call_method" and n.target in ("size", "dim"))


def _reaches(n: fx.Node, want: Role, back: bool) -> bool:
    return bool(_walk(n, want, back))


def _walk(n: fx.Node, stop: Role, back: bool) -> set[fx.Node]:
    """The first nodes satisfying ``stop`` on every path from ``n`` (backwards over inputs, or over users)."""
    hits, seen, todo = set(), {n}, list(n.all_input_nodes if back else n.users)
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if stop(cur):
            hits.add(cur)
        elif cur.op not in ("placeholder", "get_attr", "output") and not _is_shape_read(cur):
            todo.extend(cur.all_input_nodes if back else cur.users)
    return hits


def _unfed(n: fx.Node) -> bool:
    """A graph input the example inputs left at its constant default (``attn_mask=None``, ``is_causal=False``)."""
    return n.op == "placeholder" and len(n.args) == 1 and isinstance(n.args[0], (bool, int, float, type(None)))


def _fold_defaults(nodes: list[fx.Node], unfed: set[fx.Node]) -> None:
    """Inside the block, an optional input the model was traced without reads as its default value."""
    for n in nodes:
        n.args, n.kwargs = fx.node.map_arg((n.args, n.kwargs), lambda a: a.args[0] if a in unfed else a)


class AttentionPattern(GraphPattern):
    """Self-attention blocks by structure: the q/k/v linears that feed an attention core (SDPA, or softmax of
    a matmul), up to the one linear projecting its result; one data input (masks make it another block)."""

    def find(self, gm: fx.GraphModule) -> list[list[fx.Node]]:
        found: list[list[fx.Node]] = []
        used: set[fx.Node] = set()
        for core in [n for n in gm.graph.nodes if _is_core(n)]:
            ins_l, outs_l = _walk(core, linear, back=True), _walk(core, linear, back=False)
            xs = {_data_input(lin) for lin in ins_l}
            if not ins_l or len(outs_l) != 1 or len(xs) != 1 or None in xs:
                continue
            nodes = region(list(xs), list(outs_l))
            if not nodes or used.intersection(nodes):
                continue
            outside = {a for n in nodes for a in n.all_input_nodes if a not in nodes} - xs
            if any(not _unfed(a) for a in outside):
                continue  # another input (a mask, a cache) feeds the block
            _fold_defaults(nodes, outside)
            used.update(nodes)
            found.append(nodes)
        return found


def fuse(gm: fx.GraphModule, nodes: list[fx.Node], name: str) -> tuple[fx.GraphModule, fx.Node]:
    """Replace ``nodes`` of ``gm`` with one call of a new GraphModule ``name`` holding them; returns both."""
    sub, ins, outs = fuse_as_graphmodule(gm, nodes, name)
    insert_subgm(gm, sub, ins, outs, nodes[-1])
    call = next(n for n in gm.graph.nodes if n.op == "call_module" and n.target == name)
    for n in reversed(nodes):
        gm.graph.erase_node(n)
    return sub, call


__all__ = ["AttentionPattern", "FunctionalPattern", "GraphPattern", "act", "chain", "conv", "fuse", "linear", "norm",
           "norm_act",
           "region"]

"""Elastic depth: residual blocks with an identity shortcut, found from the graph, and skipped from the end.

A block is ``out = x + branch(x)`` where the branch depends on ``x`` alone and is used nowhere else; its
output may pass through activations (``relu(x + branch(x))``) before the next block reads it. A stage is a
chain of such blocks, each reading the previous one's output; at depth ``d`` only its first ``d`` blocks
run, the others pass their input on. Each block's branch moves into an :class:`ElasticResidual`, so a
skipped block costs nothing.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..graph import node_shape
from ..space import SearchSpace
from ..supernet import replace_submodule
from .base import ElasticModule
from .params import ElasticParam

_ADDS = {operator.add, operator.iadd, torch.add}
_ACT_FUNCS = {"relu", "relu_", "relu6", "hardswish", "silu", "gelu", "leaky_relu", "elu", "sigmoid", "tanh"}


@dataclass
class Block:
    """A residual block: ``add`` of the shortcut ``x`` and the branch output ``y``; ``out`` ends its tail."""

    add: fx.Node
    x: fx.Node
    y: fx.Node
    shortcut: list[fx.Node]  # identity modules between x and the add (dropped with the add)
    nodes: list[fx.Node]  # the branch, in graph order
    out: fx.Node
    prefix: str  # the module path the branch's modules share


class ElasticResidual(ElasticModule):
    """``x + branch(x)`` while the stage's depth param reaches this block, else ``x``."""

    def __init__(self, branch: fx.GraphModule, param: ElasticParam, position: int, branch_first: bool) -> None:
        super().__init__()
        self.branch, self.position, self.branch_first = branch, position, branch_first
        self.depth_param = param.name
        self.use(param)

    def runs(self, values: Mapping[str, Any]) -> bool:
        """Whether the block runs at ``values`` (the stage runs more blocks than this one's position)."""
        return int(values[self.depth_param]) > self.position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.runs(self.values()):
            return x
        y = self.branch(x)
        return y + x if self.branch_first else x + y

    def materialize(self) -> nn.Module:
        """The block as plain ops when it runs, an identity when it is skipped."""
        return Residual(self.branch, self.branch_first) if self.runs(self.values()) else Skip()

    def cost(self, values: Mapping[str, Any]) -> tuple[int, int]:
        return 0, 0

    def active_children(self, values: Mapping[str, Any]) -> Iterable[nn.Module]:
        return [self.branch] if self.runs(values) else []

    def extra_repr(self) -> str:
        return f"param={self.depth_param!r}, position={self.position}"


class Residual(nn.Module):
    """``x + branch(x)``: a kept block, traced into plain graph ops by materialize."""

    def __init__(self, branch: nn.Module, branch_first: bool) -> None:
        super().__init__()
        self.branch, self.branch_first = branch, branch_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        return y + x if self.branch_first else x + y


class Skip(nn.Module):
    """A skipped block: its input passes on (inlined away by materialize)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _is_add(n: fx.Node) -> bool:
    if n.kwargs or len(n.args) != 2 or not all(isinstance(a, fx.Node) for a in n.args):
        return False
    return (n.op == "call_function" and n.target in _ADDS) or (n.op == "call_method" and n.target == "add")


def _is_activation(gm: fx.GraphModule, n: fx.Node) -> bool:
    if n.op == "call_module":
        return type(gm.get_submodule(n.target)).__module__ == "torch.nn.modules.activation"
    name = getattr(n.target, "__name__", n.target)
    return n.op in ("call_function", "call_method") and name in _ACT_FUNCS


def _branch(x: fx.Node, y: fx.Node) -> set[fx.Node] | None:
    nodes: set[fx.Node] = set()
    stack = [y]
    while stack:
        n = stack.pop()
        if n is x or n in nodes:
            continue
        if n.op == "placeholder":
            return None  # the branch reads more than the shortcut
        nodes.add(n)
        stack.extend(n.all_input_nodes)
    if not any(x in n.all_input_nodes for n in nodes):
        return None
    for n in nodes:
        if any(u not in nodes for u in n.users) and n is not y:
            return None
    return nodes if len(y.users) == 1 else None


def _through_identities(gm: fx.GraphModule, n: fx.Node) -> tuple[fx.Node, list[fx.Node]]:
    """The node an ``nn.Identity`` shortcut forwards (and the identity calls on the way)."""
    chain = []
    while n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.Identity) and len(n.users) == 1 \
            and len(n.all_input_nodes) == 1:
        chain.append(n)
        n = n.all_input_nodes[0]
    return n, chain


def _prefix(targets: list[str]) -> str:
    parts = [t.split(".")[:-1] for t in targets]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


def residual_blocks(gm: fx.GraphModule) -> list[Block]:
    """Every ``x + branch(x)`` of ``gm`` whose branch reads only ``x``, in graph order (innermost kept)."""
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    blocks = []
    for node in gm.graph.nodes:
        if not _is_add(node):
            continue
        a, b = node.args
        for short, y in ((b, a), (a, b)):
            x, through = _through_identities(gm, short)
            nodes = _branch(x, y)
            if nodes is None or node_shape(x) != node_shape(node):
                continue
            out = node
            while len(out.users) == 1 and _is_activation(gm, u := next(iter(out.users))) \
                    and u.all_input_nodes == [out]:
                out = u
            targets = [n.target for n in nodes if n.op in ("call_module", "get_attr")]
            blocks.append(Block(node, x, y, through, sorted(nodes, key=order.__getitem__), out, _prefix(targets)))
            break
    adds = {bl.add for bl in blocks}
    return [bl for bl in blocks if not adds.intersection(bl.nodes)]


def stages(blocks: list[Block]) -> list[list[Block]]:
    """Chains of blocks where each reads the previous one's output."""
    after = {bl.out: bl for bl in blocks}
    starts = [bl for bl in blocks if bl.x not in after]
    nxt = {after[bl.x].add: bl for bl in blocks if bl.x in after}
    chains = []
    for bl in starts:
        chain = [bl]
        while chain[-1].add in nxt:
            chain.append(nxt[chain[-1].add])
        chains.append(chain)
    return chains


def add_depth(gm: fx.GraphModule, depth: Sequence[int], space: SearchSpace) -> dict[str, ElasticParam]:
    """Give every stage a depth param (blocks that run: its length minus each of ``depth``) and move each
    block's branch into an ElasticResidual."""
    params: dict[str, ElasticParam] = {}
    renamed: dict[fx.Node, fx.Node] = {}
    for chain in stages(residual_blocks(gm)):
        choices = sorted({max(len(chain) - d, 0) for d in depth})
        if len(choices) < 2:
            continue
        first = next((n.target for n in chain[0].nodes if n.op == "call_module"), chain[0].add.name)
        head = chain[0].prefix or first
        param = space.add(ElasticParam(f"depth.{head}", choices, "depth"))
        params[param.name] = param  # type: ignore[assignment]
        for i, bl in enumerate(chain):
            bl.x = renamed.get(bl.x, bl.x)  # the previous block's add is now its elastic block's call
            renamed[bl.add] = _extract(gm, bl, param, i)  # type: ignore[arg-type]
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return params


def _extract(gm: fx.GraphModule, bl: Block, param: ElasticParam, position: int) -> fx.Node:
    rel = bl.prefix + "." if bl.prefix else ""
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {bl.x: g.placeholder("x")}
    for n in bl.nodes:
        new = g.node_copy(n, lambda a: env[a])
        if n.op in ("call_module", "get_attr"):
            new.target = n.target[len(rel):]
        env[n] = new
    g.output(env[bl.y])
    branch = fx.GraphModule(gm.get_submodule(bl.prefix) if bl.prefix else gm, g, class_name="Branch")
    res = ElasticResidual(branch, param, position, branch_first=bl.add.args[0] is bl.y)
    moved = {n.target for n in bl.nodes if n.op in ("call_module", "get_attr")}
    gone = set(bl.nodes) | {bl.add} | set(bl.shortcut)
    others = [n.target for n in gm.graph.nodes if n.op in ("call_module", "get_attr") and n not in gone]
    if bl.prefix and not any(t == bl.prefix or t.startswith(rel) for t in others):
        target = bl.prefix  # the block's own module (e.g. "layer1.1") becomes the elastic block
        replace_submodule(gm, target, res)
    else:
        for t in moved - set(others):
            gm.delete_submodule(t)
        target = _free_name(gm, f"{bl.prefix.replace('.', '_') or 'block'}_residual")
        gm.add_submodule(target, res)
    with gm.graph.inserting_before(bl.add):
        call = gm.graph.call_module(target, (bl.x,))
    call.meta = dict(bl.add.meta)
    bl.add.replace_all_uses_with(call)
    gm.graph.erase_node(bl.add)
    for n in reversed(bl.nodes):
        gm.graph.erase_node(n)
    for n in bl.shortcut:
        gm.graph.erase_node(n)
    return call


def _free_name(gm: nn.Module, base: str) -> str:
    name, i = base, 1
    while hasattr(gm, name):
        i += 1
        name = f"{base}{i}"
    return name

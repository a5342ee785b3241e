"""The static counter: runs an fx graph once and costs every node with its rule (params, MACs, FLOPs, memory).

``count(module, inputs)`` traces a module and counts it; ``count_graph(gm, inputs)`` counts a GraphModule as
it is (a supernet's own graph), optionally stopping at choice modules (``stop_at``): those are run but not
costed, and come back as ``sites`` with their inputs, so a caller can cost each candidate separately.

Memory conventions: a node reads the bytes of its tensor inputs plus the weights and buffers of its module,
and writes the bytes of its outputs; views (rules with ``alias``) read and write nothing. The activation peak
is the largest sum of live outputs when the graph runs in order and frees each value after its last use
(views and in-place ops share their input's storage; the model's inputs are not counted).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..errors import TraceError
from ..graph import as_tuple, symbolic_trace
from ..registry import Registry
from .rules import COST_RULES, OpCall, RuleIndex, build_index

ADDITIVE = ("params", "macs", "flops", "read_bytes", "write_bytes")  # metrics that add up over nodes
_INPLACE_FUNCS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


@dataclass
class NodeCost:
    """The cost of one fx node. ``params`` counts only parameters no earlier node used."""

    name: str
    op: str
    target: str
    kind: str
    rule: str = ""  # the registry name of the rule that costed it ("" when none claims the op)
    params: int = 0
    macs: int = 0
    flops: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    out_shape: tuple[int, ...] | None = None
    args: str = ""  # the argument shapes and constants, e.g. "1x8x16x16,2" (keys per-op latency tables)
    alias: bool = False  # a view: shares its input's storage
    counted: bool = True  # False: no rule claims this op, its MACs/FLOPs are unknown (memory is counted)

    def metrics(self) -> dict[str, int]:
        """The additive metrics of this node."""
        return {k: getattr(self, k) for k in ADDITIVE}


@dataclass
class ChoiceSite:
    """A choice module (mixed op) the counter stopped at: run, not costed."""

    path: str
    module: nn.Module
    args: tuple[Any, ...]
    node: str


@dataclass
class GraphCount:
    """Per-node costs of one graph and the totals that are not sums (params used, activation peak)."""

    gm: fx.GraphModule
    nodes: list[NodeCost]
    sites: list[ChoiceSite] = field(default_factory=list)
    total_params: int = 0
    input_bytes: int = 0
    peak_activation_bytes: int = 0
    shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = field(default_factory=dict)  # tensor nodes by name

    def total(self) -> dict[str, int]:
        """Sums of the additive metrics (``params``: the distinct parameters the costed nodes use)."""
        return {k: sum(getattr(n, k) for n in self.nodes) for k in ADDITIVE}

    def by_kind(self, metric: str) -> dict[str, int]:
        """``metric`` summed per op kind (kinds with 0 left out)."""
        out: dict[str, int] = defaultdict(int)
        for n in self.nodes:
            out[n.kind] += getattr(n, metric)
        return {k: v for k, v in out.items() if v}

    def uncounted(self) -> list[str]:
        """Targets of the ops no rule claims (their MACs/FLOPs count as 0): register rules for them."""
        return sorted({n.target for n in self.nodes if not n.counted})

    def summary(self) -> dict[str, Any]:
        """The totals as a plain dict (what ``fxnas.profile`` returns)."""
        t = self.total()
        return {
            "params": t["params"], "total_params": self.total_params, "macs": t["macs"], "flops": t["flops"],
            "macs_by_kind": self.by_kind("macs"), "flops_by_kind": self.by_kind("flops"),
            "read_bytes": t["read_bytes"], "write_bytes": t["write_bytes"],
            "activation_bytes": t["write_bytes"], "peak_activation_bytes": self.peak_activation_bytes,
            "input_bytes": self.input_bytes, "uncounted": self.uncounted(),
        }


def nbytes(v: Any) -> int:
    """Bytes of every tensor in ``v`` (nested tuples, lists and dicts)."""
    if isinstance(v, torch.Tensor):
        return v.numel() * v.element_size()
    if isinstance(v, (tuple, list)):
        return sum(nbytes(x) for x in v)
    if isinstance(v, dict):
        return sum(nbytes(x) for x in v.values())
    return 0


def describe_args(args: Any) -> str:
    """Argument shapes (``1x8x16x16``) and constants, comma-separated: what a per-op table keys on."""
    if isinstance(args, torch.Tensor):
        return "x".join(map(str, args.shape)) + ("" if args.dtype == torch.float32 else f":{args.dtype}")
    if isinstance(args, (tuple, list)):
        return "[" + ",".join(describe_args(a) for a in args) + "]"
    if isinstance(args, dict):
        return "{" + ",".join(f"{k}={describe_args(v)}" for k, v in args.items()) + "}"
    return repr(args)


def _target_name(n: fx.Node) -> str:
    if n.op == "call_module":
        return str(n.target)
    return getattr(n.target, "__name__", str(n.target))


def _inplace(n: fx.Node, module: nn.Module | None, kwargs: Mapping[str, Any]) -> bool:
    if module is not None:
        return bool(getattr(module, "inplace", False))  # torch's own flag (nn.ReLU(inplace=True))
    if n.op == "call_method":
        return str(n.target).endswith("_") and not str(n.target).startswith("__")
    return n.target in _INPLACE_FUNCS or bool(kwargs.get("inplace", False))


class _Counter(fx.Interpreter):
    """Runs the graph, costing each node by its rule; stops (runs without costing) at choice modules."""

    def __init__(self, gm: fx.GraphModule, index: RuleIndex, stop_at: Callable[[nn.Module], bool] | None) -> None:
        super().__init__(gm)
        self.index, self.stop_at = index, stop_at
        self.costs: list[NodeCost] = []
        self.sites: list[ChoiceSite] = []
        self.sizes: dict[fx.Node, int] = {}  # bytes a node's output allocates (0: shares an input's storage)
        self.shares: dict[fx.Node, fx.Node] = {}  # node -> the input whose storage it shares
        self.seen: set[int] = set()
        self.shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}

    def run_node(self, n: fx.Node) -> Any:
        try:
            out = super().run_node(n)
        except Exception as exc:
            where = f"node {n.name!r}" + (f" (module {n.target!r})" if n.op == "call_module" else "")
            first = (str(exc).strip().splitlines() or [""])[0]
            raise TraceError(f"counting costs failed at {where}: {type(exc).__name__}: {first}") from exc
        if isinstance(out, torch.Tensor):
            self.shapes[n.name] = (tuple(out.shape), out.dtype)
        if n.op not in ("call_module", "call_function", "call_method"):
            return out
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        module = self.module.get_submodule(n.target) if n.op == "call_module" else None
        if module is not None and self.stop_at is not None and self.stop_at(module):
            self.sites.append(ChoiceSite(str(n.target), module, tuple(args), n.name))
            self.sizes[n] = nbytes(out)
            return out
        self._cost(n, module, tuple(args), dict(kwargs), out)
        return out

    def _cost(self, n: fx.Node, module: nn.Module | None, args: tuple, kwargs: dict, out: Any) -> None:
        rule = self.index.rule_for(n.op, n.target, module)
        call = OpCall(n.target, module, args, kwargs, out)
        c = NodeCost(n.name, n.op, _target_name(n), rule.kind if rule else "other", rule.name if rule else "",
                     counted=rule is not None,
                     args=describe_args(args)[1:-1] + (f";{describe_args(kwargs)}" if kwargs else ""))
        if isinstance(out, torch.Tensor):
            c.out_shape = tuple(out.shape)
        weights: list[torch.Tensor] = []
        if module is not None:
            weights = list(module.parameters()) + [b for b in module.buffers() if b is not None]
        params = [p for p in (module.parameters() if module is not None else call.tensors())
                  if isinstance(p, nn.Parameter) and id(p) not in self.seen]
        self.seen.update(id(p) for p in params)
        c.params = sum(p.numel() for p in params)
        if rule is not None:
            r = rule.count(call)
            c.macs, c.flops = int(r.macs), int(r.flops)
        if rule is not None and rule.alias:
            c.alias = True
        else:
            c.read_bytes = nbytes(call.tensors()) + nbytes(weights)
            c.write_bytes = nbytes(out)
        first = n.all_input_nodes[0] if n.all_input_nodes else None
        if first is not None and (c.alias or _inplace(n, module, kwargs)):
            self.shares[n] = first
            self.sizes[n] = 0
        else:
            self.sizes[n] = nbytes(out)
        self.costs.append(c)


def _peak(gm: fx.GraphModule, sizes: Mapping[fx.Node, int], shares: Mapping[fx.Node, fx.Node]) -> int:
    """Largest sum of live storage when nodes run in order and storage is freed after its last use."""
    order = {n: i for i, n in enumerate(gm.graph.nodes)}

    def owner(n: fx.Node) -> fx.Node:
        while n in shares:
            n = shares[n]
        return n

    last: dict[fx.Node, int] = {}
    for n in gm.graph.nodes:
        for a in n.all_input_nodes:
            o = owner(a)
            last[o] = max(last.get(o, 0), order[n])
    frees: dict[int, list[fx.Node]] = defaultdict(list)
    for o, i in last.items():
        frees[i].append(o)
    live = peak = 0
    for n in gm.graph.nodes:
        live += sizes.get(n, 0)
        peak = max(peak, live)
        for o in frees[order[n]]:
            live -= sizes.get(o, 0)
    return peak


def count_graph(gm: fx.GraphModule, example_inputs: Any, rules: Registry = COST_RULES,
                stop_at: Callable[[nn.Module], bool] | None = None) -> GraphCount:
    """Cost every node of ``gm`` run on ``example_inputs`` (no grad; modules keep their mode)."""
    args = as_tuple(example_inputs)
    counter = _Counter(gm, build_index(rules), stop_at)
    with torch.no_grad():
        counter.run(*args)
    return GraphCount(gm, counter.costs, counter.sites, sum(p.numel() for p in gm.parameters()),
                      nbytes(args), _peak(gm, counter.sizes, counter.shares), counter.shapes)


def count(module: nn.Module, example_inputs: Any, rules: Registry = COST_RULES,
          stop_at: Callable[[nn.Module], bool] | None = None, leaf_modules: Sequence[type] = ()) -> GraphCount:
    """Trace ``module`` (in eval mode; a supernet follows its current arch) and cost every node.

    ``leaf_modules`` are traced as single calls (costed by their rule; without one, ``uncounted``). The module
    is not copied: the graph calls its submodules, whose train/eval modes are restored after.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        leaf = (lambda m, _name: stop_at(m)) if stop_at is not None else None
        gm = symbolic_trace(module, leaf_types=tuple(leaf_modules), leaf_predicate=leaf)
        result = count_graph(gm, example_inputs, rules, stop_at)
    finally:
        for m, was in modes:
            m.training = was
    result.total_params = sum(p.numel() for p in module.parameters())
    return result


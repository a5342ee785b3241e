"""Objectives and constraints over metrics, Pareto helpers, and params/FLOPs counted from a supernet's graph."""

from __future__ import annotations

import copy
import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    import torch.fx as fx

    from .optim.base import Result

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_MODES = ("max", "min")


@dataclass(frozen=True)
class Objective:
    """One metric to maximise or minimise; ``metric=None`` means the first metric of each result."""

    metric: str | None = None
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigError(f"objective mode must be one of {_MODES}, got {self.mode!r}")

    def raw(self, metrics: Mapping[str, Any]) -> float:
        """The metric's value as reported."""
        if not metrics:
            raise ConfigError("a result has no metrics to optimise")
        key = self.metric if self.metric is not None else next(iter(metrics))
        if key not in metrics:
            raise ConfigError(f"objective metric {key!r} is not in the results' metrics {sorted(metrics)}")
        return float(metrics[key])

    def value(self, metrics: Mapping[str, Any]) -> float:
        """The metric oriented so that higher is better."""
        v = self.raw(metrics)
        return v if self.mode == "max" else -v

    def name(self) -> str:
        """Label for plots and files."""
        return self.metric or "metric"


@dataclass(frozen=True)
class Constraint:
    """A bound ``metric op bound`` (op in <=, >=, <, >) that feasible archs satisfy."""

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"constraint op must be one of {list(_OPS)}, got {self.op!r}")

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """0 when satisfied, else how far the metric is past the bound (relative to the bound's size)."""
        if self.metric not in metrics:
            raise ConfigError(f"constraint metric {self.metric!r} is not in the results' metrics {sorted(metrics)}; "
                              f"add it (e.g. Table estimator option costs: [params, flops])")
        v = float(metrics[self.metric])
        if _OPS[self.op](v, self.bound):
            return 0.0
        return abs(v - self.bound) / max(abs(self.bound), 1e-12) + 1e-12

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


ObjectiveLike = str | Mapping[str, Any] | Objective | None
ConstraintLike = str | Mapping[str, Any] | Constraint


def parse_objective(obj: ObjectiveLike, mode: str | None = None) -> Objective:
    """An Objective from ``"acc"``, ``"max:acc"``, ``"min:params"``, ``{metric, mode}`` or an Objective."""
    if isinstance(obj, Objective):
        return obj
    if obj is None:
        return Objective(None, mode or "max")
    if isinstance(obj, str):
        m = re.fullmatch(r"\s*(?:(max|min)\s*:\s*)?([^\s:]+)\s*", obj)
        if not m:
            raise ConfigError(f"objective {obj!r} must look like 'acc', 'max:acc' or 'min:params'")
        return Objective(m.group(2), m.group(1) or mode or "max")
    if isinstance(obj, Mapping):
        unknown = set(obj) - {"metric", "mode"}
        if unknown or "metric" not in obj:
            raise ConfigError(f"objective {dict(obj)} needs keys metric (and optional mode: max|min)")
        return Objective(str(obj["metric"]), str(obj.get("mode", mode or "max")))
    raise ConfigError(f"cannot read an objective from {type(obj).__name__}: {obj!r}")


def parse_constraint(c: ConstraintLike) -> Constraint:
    """A Constraint from ``"params <= 1e6"``, ``{metric, op, bound}`` or a Constraint."""
    if isinstance(c, Constraint):
        return c
    if isinstance(c, str):
        m = re.fullmatch(r"\s*([A-Za-z_][\w.\-]*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*", c)
        if not m:
            raise ConfigError(f"constraint {c!r} must look like 'params <= 1e6' (ops: {', '.join(_OPS)})")
        return Constraint(m.group(1), m.group(2), float(m.group(3)))
    if isinstance(c, Mapping):
        try:
            return Constraint(str(c["metric"]), str(c.get("op", "<=")), float(c["bound"]))
        except KeyError:
            raise ConfigError(f"constraint {dict(c)} needs keys metric, bound (and optional op)") from None
    raise ConfigError(f"cannot read a constraint from {type(c).__name__}: {c!r}")


def total_violation(metrics: Mapping[str, Any], constraints: Sequence[Constraint]) -> float:
    """Sum of the constraints' violations (0 means feasible)."""
    return sum(c.violation(metrics) for c in constraints)


def scalar_score(metrics: Mapping[str, Any], objective: Objective, constraints: Sequence[Constraint] = ()) -> float:
    """Higher-is-better score: the oriented metric when feasible; below every feasible arch otherwise."""
    viol = total_violation(metrics, constraints)
    if viol > 0:
        return -1e30 * (1.0 + viol)  # infeasible: ranked among themselves by how far they are off
    return objective.value(metrics)


def result_score(result: Result, objective: Objective, constraints: Sequence[Constraint] = ()) -> float:
    """scalar_score of a result; a failed evaluation (``result.failed``) ranks below everything: -inf."""
    if result.failed:
        return -math.inf
    return scalar_score(result.metrics, objective, constraints)


# --- Pareto ------------------------------------------------------------------------------------------
def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere (higher is better)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def constrained_dominates(a: Sequence[float], va: float, b: Sequence[float], vb: float) -> bool:
    """Deb's constraint-domination: feasible beats infeasible, less violation beats more, else Pareto."""
    if va > 0 or vb > 0:
        return va < vb
    return dominates(a, b)


def non_dominated_sort(points: Sequence[Sequence[float]], violations: Sequence[float] | None = None) -> list[list[int]]:
    """Fronts of indices (first: non-dominated), by fast non-dominated sorting (Deb et al. 2002)."""
    n = len(points)
    viol = list(violations) if violations is not None else [0.0] * n
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    count = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if constrained_dominates(points[i], viol[i], points[j], viol[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif constrained_dominates(points[j], viol[j], points[i], viol[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = [[i for i in range(n) if count[i] == 0]]
    while fronts[-1]:
        nxt = []
        for i in fronts[-1]:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        fronts.append(sorted(nxt))
    return fronts[:-1]


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """Crowding distance of each index of ``front`` (boundary points get inf)."""
    dist = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for m in range(len(points[front[0]])):
        order = sorted(front, key=lambda i: (points[i][m], i))
        lo, hi = points[order[0]][m], points[order[-1]][m]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for k in range(1, len(order) - 1):
            dist[order[k]] += (points[order[k + 1]][m] - points[order[k - 1]][m]) / (hi - lo)
    return dist


def objective_values(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> list[float]:
    """The oriented (higher-is-better) values of ``objectives``."""
    return [o.value(metrics) for o in objectives]


def pareto_front(results: Sequence[Result], objectives: Sequence[ObjectiveLike],
                 constraints: Sequence[ConstraintLike] = ()) -> list[Result]:
    """The feasible results no other result dominates (one per distinct arch, in input order)."""
    objs = [parse_objective(o) for o in objectives]
    cons = [parse_constraint(c) for c in constraints]
    uniq: dict[str, Result] = {}
    for r in results:
        uniq.setdefault(json.dumps(r.arch, sort_keys=True, default=str), r)
    items = [r for r in uniq.values() if not r.failed and total_violation(r.metrics, cons) == 0]
    pts = [objective_values(r.metrics, objs) for r in items]
    return [r for i, r in enumerate(items) if not any(dominates(pts[j], pts[i]) for j in range(len(items)))]


def write_pareto(folder: str | Path, front: Sequence[Result], objectives: Sequence[ObjectiveLike],
                 all_results: Sequence[Result] = (), plot: bool = True) -> Path:
    """Write ``pareto.json`` (and ``pareto.png`` when ``plot``) into ``folder``; returns the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    objs = [parse_objective(o) for o in objectives]
    data = {"objectives": [{"metric": o.metric, "mode": o.mode} for o in objs],
            "front": [r.to_dict() for r in front]}
    path = folder / "pareto.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    if plot and len(objs) >= 2:
        plot_pareto(folder / "pareto.png", front, objs, all_results)
    return path


def plot_pareto(path: str | Path, front: Sequence[Result], objectives: Sequence[ObjectiveLike],
                all_results: Sequence[Result] = ()) -> Path:
    """Scatter every result and the front over the first two objectives, saved as PNG (Agg canvas).

    Draws on its own Figure with an Agg canvas: pyplot and the global matplotlib backend (a notebook's) are
    left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    objs = [parse_objective(o) for o in objectives][:2]
    if len(objs) < 2:
        raise ConfigError("a Pareto plot needs two objectives")
    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if all_results:
        ax.scatter([objs[1].raw(r.metrics) for r in all_results], [objs[0].raw(r.metrics) for r in all_results],
                   s=8, c="0.7", label="evaluated")
    pts = sorted((objs[1].raw(r.metrics), objs[0].raw(r.metrics)) for r in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", c="C3", ms=4, label="Pareto front")
    ax.set_xlabel(f"{objs[1].name()} ({objs[1].mode})")
    ax.set_ylabel(f"{objs[0].name()} ({objs[0].mode})")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


# --- costs counted from the graph ----------------------------------------------------------------------
class GraphCost:
    """Params and FLOPs (multiply-accumulates per sample of conv/linear layers) of a supernet's subnet for an arch.

    Counted without training from the supernet's fixed modules (with the shapes ShapeProp recorded at trace
    time) plus, for each mixed op, the candidate the arch picks (run once on a fake input of the slot's shape).
    A supernet with nested mixed ops (hierarchical candidates such as ``BRANCH(...)`` or ``CELL{n}(...)``) is
    costed exactly by materialising the arch and counting the subnet (its params; conv/linear MACs of
    ``fxnas.profilers.static.profile`` at batch 1): slower, but an outer candidate's modules hold every inner
    candidate, so a per-candidate table would count choices the arch does not make.

    ``table`` lists the top-level mixed ops only: ``(param name, {candidate: (params, flops)})``, where the
    entry of a hierarchical candidate counts all of its inner candidates (an upper bound; ``nested`` says
    whether there are any). ``fixed_params``/``fixed_flops`` are what lies outside every mixed op.
    """

    def __init__(self, supernet: fx.GraphModule) -> None:
        from .graph import node_shape
        from .mixed.base import MixedOp
        from .supernet import space_of

        self.space = space_of(supernet)
        ops = {path: op for path, op in supernet.named_modules() if isinstance(op, MixedOp)}
        inner = {id(m) for op in ops.values() for m in op.modules() if m is not op and isinstance(m, MixedOp)}
        top = {path: op for path, op in ops.items() if id(op) not in inner}
        self.nested = len(top) < len(ops)
        inside = {id(m) for op in top.values() for m in op.modules()}
        self.fixed_params = sum(p.numel() for m in supernet.modules() if id(m) not in inside
                                for p in m.parameters(recurse=False))
        self.fixed_flops = 0
        for node in supernet.graph.nodes:
            if node.op == "call_module" and node.target not in ops:
                mod = supernet.get_submodule(node.target)
                self.fixed_flops += _macs(mod, node_shape(node))
        # per top-level mixed op: its param name and (params, flops) of each candidate
        self.table: list[tuple[str, dict[str, tuple[int, int]]]] = []
        shapes = {n.target: n for n in supernet.graph.nodes if n.op == "call_module"}
        for path, op in top.items():
            node = shapes.get(path)
            in_shape = _first_input_shape(node) if node is not None else None
            costs = {name: (sum(p.numel() for p in cand.parameters()), _module_flops(cand, in_shape))
                     for name, cand in op.candidates.items()}
            self.table.append((op.param.name, costs))
        # nested: __call__ materialises, so it keeps the supernet and a batch-1 input of the placeholders' shapes
        self.supernet = supernet if self.nested else None
        self.input_shapes = [node_shape(n) for n in supernet.graph.nodes if n.op == "placeholder"]

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """``{"params": ..., "flops": ...}`` of the subnet ``arch`` selects (unset params: their current value)."""
        full = {**self.space.current(), **self.space.validate(arch)}
        if self.supernet is not None:
            return self._materialised(full)
        params, flops = self.fixed_params, self.fixed_flops
        for pname, costs in self.table:
            p, f = costs[full[pname]]
            params += p
            flops += f
        return {"params": float(params), "flops": float(flops)}

    def _materialised(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """Exact counts of a nested supernet's arch: its materialised subnet, profiled at batch 1."""
        import torch

        from .passes.materialize import materialize
        from .profilers.static import profile

        if any(s is None for s in self.input_shapes):
            raise ConfigError("GraphCost of a nested supernet needs the input shapes recorded at trace time")
        dev = next(self.supernet.parameters(), torch.empty(0)).device  # type: ignore[union-attr]
        sub = materialize(self.supernet, arch)  # type: ignore[arg-type]
        xs = tuple(torch.zeros((1, *s[1:]), device=dev) for s in self.input_shapes)  # type: ignore[index]
        stats = profile(sub, xs)
        macs = stats["macs_by_kind"].get("conv", 0) + stats["macs_by_kind"].get("linear", 0)  # as _macs counts
        return {"params": float(sum(p.numel() for p in sub.parameters())), "flops": float(macs)}

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (dask workers): the space without its handlers, which hold the supernet's modules."""
        from .space import SearchSpace, TensorParam

        state = dict(self.__dict__)
        bare = SearchSpace()
        for name, p in self.space.items():
            if not isinstance(p, TensorParam):
                bare.params[name] = copy.copy(p)
        state["space"] = bare
        return state


def _first_input_shape(node: fx.Node) -> tuple[int, ...] | None:
    from .graph import input_shape

    return input_shape(node)


def _macs(mod: Any, out_shape: tuple[int, ...] | None) -> int:
    """MACs per sample of a conv or linear module given its output shape (counted as the static profiler does)."""
    import torch
    from torch import nn

    from .profilers.static import op_cost

    if out_shape is None or not isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)) \
            or isinstance(mod, nn.modules.conv._ConvTransposeNd):
        return 0
    batch = out_shape[0] if len(out_shape) > 1 else 1
    return op_cost(mod, mod, (), torch.empty(out_shape, device="meta"))[1] // max(batch, 1)


def _module_flops(module: Any, in_shape: tuple[int, ...] | None) -> int:
    """MACs per sample of ``module`` run once on zeros of ``in_shape`` (batch 1; hooks on its convs and linears)."""
    import torch
    from torch import nn

    if in_shape is None:
        return 0
    leaves = [m for m in module.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    if not leaves:
        return 0
    total = [0]

    def hook(m: nn.Module, args: Any, out: torch.Tensor) -> None:
        total[0] += _macs(m, tuple(out.shape))

    handles = [m.register_forward_hook(hook) for m in leaves]
    was = module.training
    try:
        module.eval()  # real zeros at batch 1: cheaper than fake tensors for the small shapes of a slot
        p = next(module.parameters(), None)
        x = torch.zeros((1,) + tuple(in_shape[1:]), device=p.device if p is not None else None)
        with torch.no_grad():
            module(x)
    finally:
        module.train(was)
        for h in handles:
            h.remove()
    return total[0]

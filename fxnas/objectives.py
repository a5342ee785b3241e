"""Objectives and constraints over metrics and Pareto helpers (``GraphCost`` is re-exported from profilers)."""

from __future__ import annotations

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


# --- costs counted from the graph -------------------------------------------------------------------
def __getattr__(name: str) -> Any:
    """``GraphCost`` moved to ``fxnas.profilers.graph_cost``; imported from here on first use."""
    if name == "GraphCost":
        from .profilers.graph_cost import GraphCost

        return GraphCost
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

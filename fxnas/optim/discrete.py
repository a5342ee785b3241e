"""Discrete optimizers Random and Grid, and DiscreteOptimizer: the shared de-dup / scoring / mutation base."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..objectives import ConstraintLike, Objective, parse_constraint, parse_objective, result_score
from ..space import Categorical, Numerical, Param, SearchSpace
from .base import OPTIMIZERS, Optimizer, Result, arch_key

Arch = dict[str, Any]


def param_values(p: Param, grid_points: int = 5, max_int_values: int = 64) -> list[Any]:
    """The values a grid visits for ``p``: every choice, every integer, or ``grid_points`` evenly spaced."""
    if isinstance(p, Categorical):
        return list(p.choices)
    if isinstance(p, Numerical):
        if p.integer and int(p.high) - int(p.low) + 1 <= max_int_values:
            return list(range(int(p.low), int(p.high) + 1))
        if grid_points < 2 or p.low == p.high:
            return [p.validate(p.low)]
        if p.log and p.low > 0:
            vals = [math.exp(math.log(p.low) + i * (math.log(p.high) - math.log(p.low)) / (grid_points - 1))
                    for i in range(grid_points)]
        else:
            vals = [p.low + i * (p.high - p.low) / (grid_points - 1) for i in range(grid_points)]
        vals[-1] = p.high  # keep the bound exact despite rounding
        out: list[Any] = []
        for v in vals:
            v = p.validate(min(max(v, p.low), p.high))
            if v not in out:
                out.append(v)
        return out
    raise ConfigError(f"discrete optimizers cannot enumerate param {p!r}")


def mutate_param(p: Param, value: Any, rng: Any) -> Any:
    """A value of ``p`` different from ``value`` (when the domain has one)."""
    if isinstance(p, Categorical):
        others = [c for c in p.choices if c != value]
        return rng.choice(others) if others else value
    if isinstance(p, Numerical):
        if p.integer:
            lo, hi = int(p.low), int(p.high)
            if hi == lo:
                return lo
            v = rng.randint(lo, hi - 1)
            return v + 1 if v >= value else v  # uniform over the other integers
        if p.high == p.low:
            return value
        sigma = 0.1 * (p.high - p.low)  # local Gaussian step, reflected back into range
        v = float(value) + rng.gauss(0.0, sigma)
        while not p.low <= v <= p.high:
            v = 2 * p.low - v if v < p.low else 2 * p.high - v
        return v
    raise ConfigError(f"cannot mutate param {p!r}")


def mutable(p: Param) -> bool:
    """True when ``p`` has more than one value."""
    if isinstance(p, Categorical):
        return len(p.choices) > 1
    return isinstance(p, Numerical) and p.high > p.low


class DiscreteOptimizer(Optimizer):
    """Base of the discrete optimizers: no re-proposals (unless ``allow_repeat``), a scored history, helpers.

    Options: ``metric`` (default: each result's first metric) and ``mode`` (max|min) say what to optimise;
    ``constraints`` (e.g. ``["params <= 1e6"]``) rank infeasible results below every feasible one; failed
    results (``Result.failed``) rank below everything. A subclass implements ``next`` with the helpers::

        next(n) -> [arch]                  propose; typically ``self.propose(n, make)`` with ``make`` built from
          random_arch() / mutate(arch) / crossover(a, b)     the helpers, never repeating a seen arch
        step([Result])                     super().step() records them; then update the model/population
        score(result) -> float             higher is better (objective, constraints, failures)
        current_population() -> [arch]     what population-based estimators (Unified) train the weights on
        state_dict() / load_state_dict()   super()'s plus the subclass's own plain-data state
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, allow_repeat: bool = False,
                 metric: str | Mapping[str, Any] | None = None, mode: str = "max",
                 constraints: Sequence[ConstraintLike] = (), max_tries: int = 1000, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        self.params = space.discrete()
        if not self.params:
            raise ConfigError(f"{type(self).__name__} needs a space with Categorical or Numerical params")
        self.allow_repeat = bool(allow_repeat)
        self.objective: Objective = parse_objective(metric, mode)
        self.constraints = [parse_constraint(c) for c in constraints]
        self.max_tries = int(max_tries)
        self.history: list[Result] = []
        self._seen: dict[tuple, Arch] = {}  # ordered: proposals and evaluated archs
        self.n_proposed = 0

    # --- bookkeeping --------------------------------------------------------------------------------
    def seen(self, arch: Mapping[str, Any]) -> bool:
        """True when ``arch`` was proposed or evaluated already."""
        return arch_key(arch) in self._seen

    def mark(self, arch: Mapping[str, Any]) -> None:
        """Record ``arch`` as proposed/evaluated."""
        self._seen.setdefault(arch_key(arch), dict(arch))

    def exhausted(self) -> bool:
        """True when every arch of a finite space was proposed."""
        return not self.allow_repeat and len(self._seen) >= self.space.size()

    def score(self, result: Result) -> float:
        """Higher-is-better score of a result (objective, with constraint penalty)."""
        return result_score(result, self.objective, self.constraints)

    def best_result(self) -> Result | None:
        """The best evaluated result (earliest on ties), or None before any."""
        if not self.history:
            return None
        scores = [self.score(r) for r in self.history]
        return self.history[scores.index(max(scores))]

    def best(self) -> Arch:
        """The best evaluated arch (the space's current arch before any result)."""
        r = self.best_result()
        return dict(r.arch) if r is not None else self.space.current()

    def current_population(self) -> list[Arch]:
        """The archs the optimizer builds its proposals on now (its population), [] when it keeps none.

        Population-based estimators (Unified) train the shared weights on these paths.
        """
        return []

    def step(self, results: list[Result]) -> None:
        """Record ``results`` in the history."""
        for r in results:
            self.mark(r.arch)
            self.history.append(r)

    # --- proposal helpers ---------------------------------------------------------------------------
    def random_arch(self) -> Arch:
        """A uniformly random arch."""
        return {k: p.sample(self.rng) for k, p in self.params.items()}

    def mutate(self, arch: Mapping[str, Any], prob: float | None = None) -> Arch:
        """Change one random param to a different value (``prob=None``), or each param with probability ``prob``."""
        child = dict(arch)
        names = [k for k, p in self.params.items() if mutable(p)]
        if not names:
            return child
        if prob is None:
            k = self.rng.choice(names)
            child[k] = mutate_param(self.params[k], child[k], self.rng)
        else:
            for k in names:
                if self.rng.random() < prob:
                    child[k] = mutate_param(self.params[k], child[k], self.rng)
        return child

    def crossover(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> Arch:
        """Uniform crossover: each param from ``a`` or ``b`` with equal probability."""
        return {k: (a[k] if self.rng.random() < 0.5 else b[k]) for k in self.params}

    def fresh(self, make: Callable[[], Arch]) -> Arch | None:
        """An arch from ``make()`` not proposed before (falls back to random, then enumeration); None if exhausted."""
        if self.exhausted():
            return None
        for _ in range(self.max_tries):
            arch = make()
            if self.allow_repeat or not self.seen(arch):
                return self._take(arch)
        for _ in range(self.max_tries):
            arch = self.random_arch()
            if not self.seen(arch):
                return self._take(arch)
        rest = self._unseen(limit=1_000_000)
        return self._take(self.rng.choice(rest)) if rest else None

    def _take(self, arch: Arch) -> Arch:
        self.mark(arch)
        self.n_proposed += 1
        return arch

    def _unseen(self, limit: int) -> list[Arch]:
        """Every unseen arch of a small discrete space, in grid order."""
        grid = Grid.values_of(self.params)
        total = math.prod(len(v) for v in grid.values())
        if total > limit:
            return []
        return [a for a in (Grid.arch_at(grid, i) for i in range(total)) if not self.seen(a)]

    def propose(self, n: int, make: Callable[[], Arch]) -> list[Arch]:
        """Up to ``n`` fresh archs from ``make``."""
        out = []
        for _ in range(max(0, int(n))):
            a = self.fresh(make)
            if a is None:
                break
            out.append(a)
        return out

    # --- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """RNG, history, proposed archs and counters (plain data)."""
        return {**super().state_dict(), "history": [r.to_dict() for r in self.history],
                "seen": [dict(a) for a in self._seen.values()], "n_proposed": self.n_proposed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict."""
        super().load_state_dict(state)
        self.history = [r if isinstance(r, Result) else Result.from_dict(r) for r in state.get("history", [])]
        self._seen = {}
        for a in state.get("seen", []):
            self.mark(a)
        self.n_proposed = int(state.get("n_proposed", len(self._seen)))


@OPTIMIZERS.register("Random")
class Random(DiscreteOptimizer):
    """Random search: uniform samples of the space, without repeats unless ``allow_repeat``."""

    def next(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` uniformly random archs."""
        return self.propose(n, self.random_arch)


@OPTIMIZERS.register("Grid")
class Grid(DiscreteOptimizer):
    """Grid search in row-major order (first param slowest); floats get ``grid_points`` evenly spaced values.

    With ``allow_repeat`` the grid starts over when done; otherwise ``next`` returns [] once it is exhausted.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, grid_points: int = 5, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        self.grid = self.values_of(self.params, grid_points)
        self.total = math.prod(len(v) for v in self.grid.values())
        self.pos = 0

    @staticmethod
    def values_of(params: Mapping[str, Param], grid_points: int = 5) -> dict[str, list[Any]]:
        """The grid values of every param."""
        return {k: param_values(p, grid_points) for k, p in params.items()}

    @staticmethod
    def arch_at(grid: Mapping[str, Sequence[Any]], index: int) -> Arch:
        """The arch at row-major position ``index`` of ``grid``."""
        arch: Arch = {}
        for k in reversed(list(grid)):
            vals = grid[k]
            index, r = divmod(index, len(vals))
            arch[k] = vals[r]
        return {k: arch[k] for k in grid}

    def next(self, n: int = 1) -> list[Arch]:
        """The next ``n`` grid points not evaluated yet."""
        out: list[Arch] = []
        while len(out) < n:
            if self.pos >= self.total:
                if not self.allow_repeat or self.total == 0:
                    break
                self.pos = 0
            arch = self.arch_at(self.grid, self.pos)
            self.pos += 1
            if self.allow_repeat or not self.seen(arch):
                out.append(self._take(arch))
        return out

    def state_dict(self) -> dict[str, Any]:
        """Base state plus the grid position."""
        return {**super().state_dict(), "pos": self.pos}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict."""
        super().load_state_dict(state)
        self.pos = int(state.get("pos", 0))

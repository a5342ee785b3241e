"""NSGA2: multi-objective evolution by non-dominated sorting and crowding distance (Deb et al. 2002)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..objectives import (
    Objective,
    ObjectiveLike,
    crowding_distance,
    non_dominated_sort,
    objective_values,
    pareto_front,
    parse_objective,
    total_violation,
)
from ..space import SearchSpace
from .base import OPTIMIZERS, Result
from .discrete import Arch, DiscreteOptimizer


@OPTIMIZERS.register("NSGA2")
class NSGA2(DiscreteOptimizer):
    """NSGA-II over ``objectives`` (e.g. ``["max:acc", "min:params"]``), with Deb's constraint-domination.

    The first ``population`` proposals are random; children come from binary tournaments on (front rank,
    crowding), uniform crossover (``crossover_prob``) and per-param mutation (``mutation_prob``, default
    1/#params, at least one change without crossover). Once ``population`` new results are in, parents and
    offspring are merged and cut back to ``population`` by rank then crowding. ``pareto_front()`` gives the
    non-dominated feasible results of everything evaluated.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, objectives: Sequence[ObjectiveLike] = (),
                 population: int = 20, crossover_prob: float = 0.9, mutation_prob: float | None = None,
                 **kwargs: Any) -> None:
        if not objectives:
            raise ConfigError("NSGA2 needs objectives, e.g. objectives: ['max:cifar10_valid_12ep', 'min:params']")
        super().__init__(space, seed, **kwargs)
        self.objectives: list[Objective] = [parse_objective(o) for o in objectives]
        self.objective = self.objectives[0]  # best() ranks by the first objective
        if int(population) < 2:
            raise ConfigError(f"NSGA2 population must be >= 2, got {population}")
        self.population_size = int(population)
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = 1.0 / len(self.params) if mutation_prob is None else float(mutation_prob)
        self.parents: list[Result] = []
        self.offspring: list[Result] = []
        self._rank: dict[int, tuple[int, float]] = {}  # parent index -> (front, -crowding)

    # --- selection ----------------------------------------------------------------------------------
    def _points(self, rs: Sequence[Result]) -> tuple[list[list[float]], list[float]]:
        # a failed evaluation: worst on every objective and infinitely infeasible, so it is cut first
        worst = [-math.inf] * len(self.objectives)
        return ([worst if r.failed else objective_values(r.metrics, self.objectives) for r in rs],
                [math.inf if r.failed else total_violation(r.metrics, self.constraints) for r in rs])

    def _environmental(self, pool: list[Result]) -> list[Result]:
        """Cut ``pool`` to ``population`` by non-dominated rank, then crowding distance; records the ranks."""
        pts, viol = self._points(pool)
        chosen: list[tuple[int, int, float]] = []
        for f, front in enumerate(non_dominated_sort(pts, viol)):
            dist = crowding_distance(pts, front)
            room = self.population_size - len(chosen)
            if room <= 0:
                break
            ordered = sorted(front, key=lambda i: (-dist[i], i))[:room]
            chosen += [(i, f, dist[i]) for i in ordered]
        self._rank = {k: (f, -d) for k, (_, f, d) in enumerate(chosen)}
        return [pool[i] for i, _, _ in chosen]

    def _tournament(self) -> Result:
        i, j = self.rng.randrange(len(self.parents)), self.rng.randrange(len(self.parents))
        return self.parents[min(i, j, key=lambda k: (self._rank.get(k, (0, 0.0)), k))]

    def _child(self) -> Arch:
        if not self.parents:
            return self.random_arch()
        a = self._tournament()
        if self.rng.random() < self.crossover_prob:
            return self.mutate(self.crossover(a.arch, self._tournament().arch), self.mutation_prob)
        return self.mutate(self.mutate(a.arch), self.mutation_prob)

    def next(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` children of the current parents (random ones for the first generation)."""
        return self.propose(n, self._child)

    def step(self, results: list[Result]) -> None:
        """Collect offspring; every ``population`` of them, select the next parents from parents + offspring."""
        super().step(results)
        self.offspring.extend(results)
        if len(self.offspring) >= self.population_size:
            self.parents = self._environmental(self.parents + self.offspring)
            self.offspring = []

    # --- results ------------------------------------------------------------------------------------
    def pareto_front(self) -> list[Result]:
        """The non-dominated feasible results among everything evaluated."""
        return pareto_front(self.history, self.objectives, self.constraints)

    def state_dict(self) -> dict[str, Any]:
        """Base state plus parents, pending offspring and parent ranks."""
        return {**super().state_dict(), "parents": [r.to_dict() for r in self.parents],
                "offspring": [r.to_dict() for r in self.offspring],
                "rank": [[k, f, d] for k, (f, d) in sorted(self._rank.items())]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict."""
        super().load_state_dict(state)
        self.parents = [Result.from_dict(r) for r in state.get("parents", [])]
        self.offspring = [Result.from_dict(r) for r in state.get("offspring", [])]
        self._rank = {int(k): (int(f), float(d)) for k, f, d in state.get("rank", [])}

"""Evolutionary optimizers: Evolution (tournament + crossover + mutation) and RegularizedEvolution (aging)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..space import SearchSpace
from .base import OPTIMIZERS, Result
from .discrete import Arch, DiscreteOptimizer


def _check_positive(name: str, value: int, at_least: int = 1) -> int:
    if int(value) < at_least:
        raise ConfigError(f"{name} must be an integer >= {at_least}, got {value!r}")
    return int(value)


@OPTIMIZERS.register("Evolution")
class Evolution(DiscreteOptimizer):
    """Steady-state elitist GA: a population of the ``population`` best results; children by tournament
    selection (size ``tournament``), uniform crossover (probability ``crossover_prob``) and per-param mutation
    (probability ``mutation_prob``, default 1/#params; at least one param changes when there is no crossover).
    The first ``population`` proposals are random.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, population: int = 20, tournament: int = 3,
                 crossover_prob: float = 0.5, mutation_prob: float | None = None, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        self.population_size = _check_positive("population", population)
        self.tournament = _check_positive("tournament", tournament)
        if not 0.0 <= crossover_prob <= 1.0:
            raise ConfigError(f"crossover_prob must be in [0, 1], got {crossover_prob}")
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = 1.0 / len(self.params) if mutation_prob is None else float(mutation_prob)
        self.population: list[Result] = []

    def _select(self) -> Result:
        """Tournament selection: the best of ``tournament`` members drawn without replacement."""
        group = self.rng.sample(self.population, min(self.tournament, len(self.population)))
        return max(group, key=self.score)

    def _child(self) -> Arch:
        if not self.population or self.n_proposed < self.population_size:
            return self.random_arch()
        a = self._select()
        if self.rng.random() < self.crossover_prob:
            child = self.crossover(a.arch, self._select().arch)
            return self.mutate(child, self.mutation_prob)
        return self.mutate(self.mutate(a.arch), self.mutation_prob)

    def current_population(self) -> list[Arch]:
        """The population (best first)."""
        return [dict(r.arch) for r in self.population]

    def next(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` children of the current population (random ones while it fills)."""
        return self.propose(n, self._child)

    def step(self, results: list[Result]) -> None:
        """Add ``results``, keeping the ``population`` best (earlier results win ties)."""
        super().step(results)
        pool = self.population + list(results)
        order = sorted(range(len(pool)), key=lambda i: (-self.score(pool[i]), i))
        self.population = [pool[i] for i in order[: self.population_size]]

    def state_dict(self) -> dict[str, Any]:
        """Base state plus the population."""
        return {**super().state_dict(), "population": [r.to_dict() for r in self.population]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict."""
        super().load_state_dict(state)
        self.population = [Result.from_dict(r) for r in state.get("population", [])]


@OPTIMIZERS.register("RegularizedEvolution")
class RegularizedEvolution(DiscreteOptimizer):
    """Aging evolution (Real et al. 2019): population ``population`` (P), sample ``sample`` (S).

    The first P proposals are random; then each child is the best of S members sampled from the population
    with one param mutated to a different value; each evaluated child joins and the oldest member leaves.
    """

    def __init__(self, space: SearchSpace, seed: int | None = 0, population: int = 10, sample: int = 3,
                 **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        self.population_size = _check_positive("population", population)
        self.sample_size = _check_positive("sample", sample)
        self.population: list[Result] = []  # oldest first

    def _child(self) -> Arch:
        if not self.population or self.n_proposed < self.population_size:
            return self.random_arch()
        group = self.rng.sample(self.population, min(self.sample_size, len(self.population)))
        parent = max(group, key=self.score)
        return self.mutate(parent.arch)

    def current_population(self) -> list[Arch]:
        """The population (oldest first)."""
        return [dict(r.arch) for r in self.population]

    def next(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` mutated children (random ones while the population fills)."""
        return self.propose(n, self._child)

    def step(self, results: list[Result]) -> None:
        """Each result joins the population; the oldest members leave beyond ``population``."""
        super().step(results)
        self.population.extend(results)
        del self.population[: max(0, len(self.population) - self.population_size)]

    def state_dict(self) -> dict[str, Any]:
        """Base state plus the population (oldest first)."""
        return {**super().state_dict(), "population": [r.to_dict() for r in self.population]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from state_dict."""
        super().load_state_dict(state)
        self.population = [Result.from_dict(r) for r in state.get("population", [])]

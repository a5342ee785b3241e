"""The Table estimator: an arch's metrics looked up in a benchmark table (NAS-Bench-201) instead of trained."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..optim.base import Result, arch_key
from ..registry import Registry
from .base import ESTIMATORS, Estimator

if TYPE_CHECKING:
    from ..routine import Experiment

BENCHMARKS = Registry("benchmark table")
COSTS = ("params", "flops")


@BENCHMARKS.register("nb201")
def _nb201(path: str | None = None) -> Any:
    """The NAS-Bench-201 table (see fxnas.nb201.table.table_dir for where it is looked for)."""
    from ..nb201.table import load_table

    return load_table(path)


@ESTIMATORS.register("Table")
class Table(Estimator):
    """Evaluate ``budget`` archs proposed by the experiment's optimizer by table lookup, ``batch_size`` at a time.

    Each result's metrics are ``metric`` first (the search signal, what an objective-less optimizer maximises),
    then the ``report`` metrics (scores of the found arch, not seen by a well-configured optimizer), then the
    ``costs`` (``params``, ``flops``: counted from the supernet's graph, the experiment's or the benchmark's).
    """

    def __init__(self, budget: int = 100, batch_size: int = 1, benchmark: str = "nb201",
                 metric: str = "cifar10_valid_12ep", report: Sequence[str] = ("cifar10_test_200ep",),
                 costs: Sequence[str] = (), path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(budget) < 1 or int(batch_size) < 1:
            raise ConfigError(f"Table: budget and batch_size must be >= 1, got {budget}, {batch_size}")
        bad = [c for c in costs if c not in COSTS]
        if bad:
            raise ConfigError(f"Table: unknown costs {bad}; valid: {list(COSTS)}")
        self.budget, self.batch_size = int(budget), int(batch_size)
        self.benchmark, self.path = benchmark, path
        self.table = BENCHMARKS.get(benchmark)(path)
        metrics = getattr(self.table, "metrics", [])
        for m in [metric, *report]:
            if m not in metrics:
                raise ConfigError(f"Table: {benchmark} has no metric {m!r}; valid: {metrics}")
        self.metric, self.report, self.costs = metric, list(report), list(costs)
        self._cost_fn: Callable[[Mapping[str, Any]], dict[str, float]] | None = None
        self.n_done = 0

    def cost_fn(self, supernet: Any = None) -> Callable[[Mapping[str, Any]], dict[str, float]]:
        """Params/FLOPs counter of ``supernet`` (default: the benchmark's own supernet, built once)."""
        if self._cost_fn is None:
            from ..objectives import GraphCost

            if supernet is None or getattr(supernet, "space", None) is None:
                if self.benchmark != "nb201":
                    raise ConfigError(f"Table costs need a supernet for benchmark {self.benchmark!r}")
                from ..nb201.model import nb201_supernet

                supernet = nb201_supernet(check=False)  # shapes are checked by the NB201 tests
            self._cost_fn = GraphCost(supernet)
        return self._cost_fn

    def evaluate(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """The looked-up metrics of ``arch`` (plus counted costs)."""
        row = self.table.lookup(arch)
        out = {self.metric: row[self.metric]}
        out.update({m: row[m] for m in self.report if m != self.metric})
        if self.costs:
            c = self.cost_fn()(arch)
            out.update({k: c[k] for k in self.costs})
        return out

    def run(self, exp: Experiment) -> list[Result]:
        """Look up ``budget`` proposals of ``exp.optimizer`` (via exp.evaluate_loop when the experiment has one)."""
        if self.costs:
            self.cost_fn(getattr(exp, "model", None))
        if hasattr(exp, "evaluate_loop"):
            return exp.evaluate_loop(self.evaluate, self.budget, self.batch_size)
        return self.search(exp.optimizer, self.budget - self.n_done)

    def search(self, optimizer: Any, budget: int | None = None) -> list[Result]:
        """A standalone loop without an Experiment: propose, look up, step, ``budget`` distinct archs."""
        budget = self.budget if budget is None else budget
        results: list[Result] = []
        cache: dict[tuple, Result] = {}
        proposals = 0
        while len(results) < budget and proposals < 10 * budget + 100:
            archs = optimizer.next(min(self.batch_size, budget - len(results)))
            if not archs:
                break
            proposals += len(archs)
            for a in archs:
                if arch_key(a) not in cache:
                    cache[arch_key(a)] = r = Result(dict(a), self.evaluate(a))
                    results.append(r)
                    self.n_done += 1
            optimizer.step([cache[arch_key(a)] for a in archs])
        return results

    def state_dict(self) -> dict[str, Any]:
        """How many archs this estimator evaluated (the routine keeps the rest)."""
        return {"n_done": self.n_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from state_dict."""
        self.n_done = int(state.get("n_done", 0))

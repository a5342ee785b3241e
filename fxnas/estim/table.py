"""The Table estimator: an arch's metrics looked up in a benchmark table (NAS-Bench-201) instead of trained."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..costs import ArchCosts, CostSpec, check_costs
from ..errors import ConfigError
from ..options import FilePath
from ..registry import Registry
from .base import ESTIMATORS, Estimator, SearchContext

if TYPE_CHECKING:
    from ..optim.base import Optimizer, Result

BENCHMARKS = Registry("benchmark table")


@BENCHMARKS.register("nb201")
def _nb201(path: str | None = None) -> Any:
    """The NAS-Bench-201 table (see fxnas.spaces.nb201.table.table_dir for where it is looked for)."""
    from ..spaces.nb201.table import load_table

    return load_table(path)


@dataclass
class TableLookup:
    """Table's evaluate function: plain data only, so dask can pickle it to worker processes.

    A worker loads the table from ``path`` itself (NB201: parsed once per process) and keeps it for its next
    lookups; ``cost_fn`` is an ArchCosts, which pickles without the live supernet.
    """

    benchmark: str
    path: str | None
    metric: str
    report: tuple[str, ...] = ()
    costs: tuple[str, ...] = ()
    cost_fn: Callable[[Mapping[str, Any]], Mapping[str, float]] | None = None
    _table: Any = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """The looked-up metrics of ``arch`` (``metric`` first, then ``report``, then the counted costs)."""
        if self._table is None:
            self._table = BENCHMARKS.get(self.benchmark)(self.path)
        row = self._table.lookup(arch)
        out = {self.metric: row[self.metric]}
        out.update({m: row[m] for m in self.report if m != self.metric})
        if self.costs:
            assert self.cost_fn is not None
            c = self.cost_fn(arch)
            out.update({k: float(c[k]) for k in self.costs})
        return out

    def __getstate__(self) -> dict[str, Any]:
        """The fields without the loaded table (each process loads its own)."""
        return {**self.__dict__, "_table": None}


@ESTIMATORS.register("Table")
class Table(Estimator):
    """Evaluate ``budget`` archs proposed by the experiment's optimizer by table lookup, ``batch_size`` at a time.

    Each result's metrics are ``metric`` first (the search signal, what an objective-less optimizer maximises),
    then the ``report`` metrics (scores of the found arch, not seen by a well-configured optimizer), then the
    ``costs`` (``params``, ``macs``, ``flops`` or another fxnas.costs metric: counted from the supernet, the
    experiment's, elastic ones included, or the benchmark's).
    Lookups are pure functions of the arch, so this estimator runs on ``parallel.backend: dask`` too.
    """

    parallel_safe = True

    def __init__(self, budget: int = 100, batch_size: int = 1, benchmark: str = "nb201",
                 metric: str = "cifar10_valid_12ep", report: Sequence[str] = ("cifar10_test_200ep",),
                 costs: Sequence[CostSpec] = (), path: FilePath | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(budget) < 1 or int(batch_size) < 1:
            raise ConfigError(f"Table: budget and batch_size must be >= 1, got {budget}, {batch_size}")
        self.cost_specs = list(costs)
        costs = check_costs(costs, "Table costs")
        self.budget, self.batch_size = int(budget), int(batch_size)
        self.benchmark, self.path = benchmark, path
        self.table = BENCHMARKS.get(benchmark)(path)
        metrics = getattr(self.table, "metrics", [])
        for m in [metric, *report]:
            if m not in metrics:
                raise ConfigError(f"Table: {benchmark} has no metric {m!r}; valid: {metrics}")
        self.metric, self.report, self.costs = metric, list(report), list(costs)
        self._cost_fn: Callable[[Mapping[str, Any]], dict[str, float]] | None = None

    def cost_fn(self, supernet: Any = None) -> Callable[[Mapping[str, Any]], dict[str, float]]:
        """The ``costs`` counter of ``supernet`` (default: the benchmark's own supernet, built once)."""
        if self._cost_fn is None:
            if supernet is None or getattr(supernet, "space", None) is None:
                if self.benchmark != "nb201":
                    raise ConfigError(f"Table costs need a supernet for benchmark {self.benchmark!r}")
                from ..spaces.nb201.model import nb201_supernet

                supernet = nb201_supernet(check=False)  # shapes are checked by the NB201 tests
            self._cost_fn = ArchCosts(supernet, self.cost_specs, "Table costs")
        return self._cost_fn

    def evaluator(self, supernet: Any = None) -> TableLookup:
        """The picklable evaluate function (costs counted from ``supernet``, default the benchmark's)."""
        folder = getattr(self.table, "folder", None)  # resolved here: a worker's cwd and env may differ
        return TableLookup(self.benchmark, str(folder) if folder is not None else self.path, self.metric,
                           tuple(self.report), tuple(self.costs), self.cost_fn(supernet) if self.costs else None)

    def evaluate(self, arch: Mapping[str, Any]) -> dict[str, float]:
        """The looked-up metrics of ``arch`` (plus counted costs)."""
        return self.evaluator()(arch)

    def metric_names(self, exp: SearchContext) -> set[str] | None:
        """The looked-up ``metric`` and ``report`` metrics and the counted ``costs``."""
        return {self.metric, *self.report, *self.costs}

    def run(self, exp: SearchContext) -> list[Result]:
        """Look up ``budget`` proposals of ``exp.optimizer`` through ``exp.evaluate_loop``."""
        return exp.evaluate_loop(self.evaluator(exp.model), self.budget, self.batch_size)

    def search(self, optimizer: Optimizer, budget: int | None = None) -> list[Result]:
        """``budget`` lookups of ``optimizer``'s proposals without an experiment (scripts, benchmarks).

        The experiment's own loop (``loop.discrete_loop``: deduplication, stopping rule) without its
        history files, checkpoints or console; results come back in evaluation order.
        """
        from ..loop import discrete_loop

        fn, results = self.evaluator(), []

        def keep(r: Result) -> Result:
            results.append(r)
            return r

        discrete_loop(optimizer, lambda archs: [fn(a) for a in archs], self.budget if budget is None else int(budget),
                      self.batch_size, {}, {"evaluated": 0, "proposed": 0}, keep)
        return results

"""Optimizer overhead: proposals per second of discrete optimizers in a NAS-Bench-201 table search.

Run: python benchmarks/optimizer_overhead.py [--budget 100] [--seeds 3] [--methods ...]
Each run is ``Table.search`` (the experiment's discrete loop: propose, de-duplicate, look up, step) with
``--budget`` evaluations; the figure is budget / wall time, so it counts the optimizer's own work (SMBO's
surrogate refits, NSGA-II's sorting) plus the table lookups (microseconds each). Median over seeds.
Target: SMBO >= 50 proposals/s at 100 evaluations. Needs the NB201 tables (see fxnas.spaces.nb201.table).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _bench import machine, single_thread

from fxnas.estim.table import Table
from fxnas.optim import OPTIMIZERS
from fxnas.spaces.nb201 import nb201_space
from fxnas.spaces.nb201.table import FINAL_METRIC, SEARCH_METRIC

SECOND = "cifar100_valid_12ep"  # NSGA-II's second objective (a table column, so no graph costs are counted)
METHODS: dict[str, dict[str, Any]] = {
    "RegularizedEvolution": {"population": 10, "sample": 3},
    "ModelBased": {"objective": "regression", "acquisition": "annealing", "init_random": 10, "epsilon": 0.1},
    "NSGA2": {"population": 20, "objectives": [f"max:{SEARCH_METRIC}", f"max:{SECOND}"]},
}
TARGETS = {"ModelBased": 50.0}


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print proposals/s per optimizer; returns the medians."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS))
    a = ap.parse_args(argv)
    single_thread()
    table = Table(budget=a.budget, metric=SEARCH_METRIC, report=[FINAL_METRIC, SECOND])
    table.search(OPTIMIZERS.get("Random")(nb201_space(), seed=0, metric=SEARCH_METRIC), 2)  # loads the table
    t = time.perf_counter()
    import xgboost  # noqa: F401  (SMBO's surrogate; importing it once per process is not a proposal's cost)

    print(f"NAS-Bench-201 table search, {a.budget} evaluations per run, {a.seeds} seed(s); {machine()}; "
          f"xgboost import {time.perf_counter() - t:.1f} s (not timed below)")
    out: dict[str, float] = {}
    for method in a.methods.split(","):
        rates, cpu_rates = [], []
        for seed in range(a.seeds):
            opt = OPTIMIZERS.get(method)(nb201_space(), seed=seed, metric=SEARCH_METRIC, **METHODS[method])
            t, c = time.perf_counter(), time.process_time()
            results = table.search(opt, a.budget)
            dt, dc = time.perf_counter() - t, time.process_time() - c
            assert len(results) == a.budget, (method, seed, len(results))
            rates.append(a.budget / dt)
            cpu_rates.append(a.budget / max(dc, 1e-9))
        out[method] = statistics.median(rates)
        target = TARGETS.get(method)
        note = f"  target >= {target:.0f}/s" if target else ""
        print(f"{method:22s} {out[method]:9.1f} proposals/s (min {min(rates):.1f}, max {max(rates):.1f}); "
              f"per CPU second (what a loaded machine does not share out) {statistics.median(cpu_rates):.1f}{note}")
    return out


if __name__ == "__main__":
    main()

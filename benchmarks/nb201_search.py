"""NAS-Bench-201 search benchmark: Random, RegularizedEvolution and ModelBased (SMBO) by table lookup.

Each run evaluates ``--budget`` distinct archs by their 12-epoch CIFAR-10 validation accuracy (the paper's search
signal); the found arch is the evaluated one with the best such accuracy, scored by its 200-epoch CIFAR-10 test
accuracy. Prints mean ± std over seeds beside the NAS-Bench-201 paper's Table 5.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nb201_search.py --seeds 500 --smbo-seeds 50
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from fxnas.estim.table import Table
from fxnas.optim import OPTIMIZERS
from fxnas.spaces.nb201 import nb201_space
from fxnas.spaces.nb201.table import FINAL_METRIC, SEARCH_METRIC

PAPER = {"Random": (93.70, 0.36), "RegularizedEvolution": (93.92, 0.30)}
OPTIMUM = 94.37
METHODS: dict[str, dict[str, Any]] = {
    "Random": {},
    "RegularizedEvolution": {"population": 10, "sample": 3},
    "ModelBased": {"objective": "regression", "acquisition": "annealing", "init_random": 10, "epsilon": 0.1},
    "ModelBased[ranking]": {"objective": "ranking", "acquisition": "annealing", "init_random": 10, "epsilon": 0.1},
}


def run_one(method: str, seed: int, budget: int, table: Table) -> float:
    """Final (200-epoch test) accuracy of the arch one search run finds."""
    opt = OPTIMIZERS.get(method.split("[")[0])(nb201_space(), seed=seed, metric=SEARCH_METRIC, **METHODS[method])
    results = table.search(opt, budget)
    assert len(results) == budget, (method, seed, len(results))
    found = max(results, key=lambda r: r.metrics[SEARCH_METRIC])  # best by the search signal only
    return found.metrics[FINAL_METRIC]


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float, int, float]]:
    """Run the benchmark; returns {method: (mean, std, seeds, seconds)}."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=500, help="seeds for Random and RegularizedEvolution")
    ap.add_argument("--smbo-seeds", type=int, default=50, help="seeds for ModelBased (slower)")
    ap.add_argument("--budget", type=int, default=100, help="evaluations per run")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    args = ap.parse_args(argv)
    table = Table(budget=args.budget, metric=SEARCH_METRIC, report=[FINAL_METRIC])
    out: dict[str, tuple[float, float, int, float]] = {}
    print(f"NAS-Bench-201 CIFAR-10, {args.budget} evaluations per run; found arch = best {SEARCH_METRIC}; "
          f"score = {FINAL_METRIC} (optimum {OPTIMUM})")
    print(f"{'method':24s} {'seeds':>5s} {'test acc (mean ± std)':>22s} {'paper':>14s} {'time':>8s}")
    for method in args.methods.split(","):
        n = args.smbo_seeds if method.startswith("ModelBased") else args.seeds
        t0 = time.perf_counter()
        accs = [run_one(method, s, args.budget, table) for s in range(n)]
        dt = time.perf_counter() - t0
        mean, std = statistics.fmean(accs), statistics.pstdev(accs)
        out[method] = (mean, std, n, dt)
        paper = PAPER.get(method)
        ptxt = f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "-"
        print(f"{method:24s} {n:5d} {mean:12.2f} ± {std:.2f}      {ptxt:>14s} {dt:7.1f}s", flush=True)
    return out


if __name__ == "__main__":
    main()

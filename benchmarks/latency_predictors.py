"""How well the latency predictors predict measured subnets: Spearman and MAPE on held-out subnets.

Run: nice python benchmarks/latency_predictors.py [--subnets 100] [--rounds 9] [--repeats 5] [--quick]

Two spaces on this CPU with onnxruntime (1 thread): a MobileNetV2 space (torchvision mobilenet_v2, every
inverted-residual block MB{3,5,7}E{3,6} or, where shapes allow, IDT; 96x96 input) and a ResNet space
(torchvision resnet18, every 3x3 conv ORIG/NC5/DW3/DW5/MB3E3/MB3E6 or IDT; 64x64). For each: ``--subnets``
random subnets are exported to ONNX and timed in ``--rounds`` rounds (the order alternates between rounds;
a subnet's latency is the median of all its runs; the minimum is shown too, as it is far less sensitive to
other processes on a shared machine), then 5-fold cross-validation holds every subnet out once:

* table: the latency table's sum (each candidate timed at its slot's shape, fixed ops per op) plus the
  overhead fitted on the other folds (also: a fitted scale and overhead, and the raw sum);
* xgboost: XGBoost on the space's one-hot features (also: with the static counts, and the table sum, as
  extra features).

Targets: Spearman >= 0.9, MAPE <= 10 %. The machine is shared: run it under ``nice``; spread is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torchvision

import fxnas
from fxnas.profilers.graph_cost import GraphCost
from fxnas.profilers.latency import LatencyProfiler, latency_tree
from fxnas.profilers.predictors import (
    StaticFeatures,
    TablePredictor,
    XGBoostPredictor,
    cross_validate,
    prediction_quality,
)
from fxnas.profilers.runtimes import OnnxRuntime, time_runs


def _mb(spec: Any) -> list[str]:
    c = ["MB3E3", "MB3E6", "MB5E3", "MB5E6", "MB7E3", "MB7E6"]
    return c + ["IDT"] if spec.stride == 1 and spec.in_channels == spec.out_channels else c


def _rn(spec: Any) -> list[str]:
    c = ["ORIG", "NC5", "DW3", "DW5", "MB3E3", "MB3E6"]
    return c + ["IDT"] if spec.stride == 1 and spec.in_channels == spec.out_channels else c


SPACES = {
    "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=10), "inverted_residual", _mb, 96),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), "conv3x3", _rn, 64),
}


def distinct_archs(space: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct random archs."""
    import random

    rng, seen, out = random.Random(seed), set(), []
    while len(out) < n:
        a = space.sample(rng)
        k = tuple(sorted(a.items()))
        if k not in seen:
            seen.add(k)
            out.append(a)
    return out


def measure_subnets(sn: Any, archs: list[dict[str, Any]], x: torch.Tensor, rounds: int, repeats: int,
                    folder: Path) -> tuple[list[list[float]], float]:
    """(every timed run in ms per subnet, over all rounds; export seconds)."""
    from fxnas.profilers.onnx_export import export_onnx

    rt = OnnxRuntime(threads=1)
    t0 = time.perf_counter()
    paths = []
    for i, a in enumerate(archs):
        sub = fxnas.materialize(sn, a).eval()
        paths.append(export_onnx(sub, x, folder / f"s{i}.onnx", simplify=False, check=False))
    export_s = time.perf_counter() - t0
    samples: list[list[float]] = [[] for _ in archs]
    feeds_x = x.numpy()
    for r in range(rounds):
        order = range(len(paths)) if r % 2 == 0 else reversed(range(len(paths)))
        for i in order:
            sess = rt.session(paths[i])
            feeds = {sess.get_inputs()[0].name: feeds_x}
            samples[i] += time_runs(lambda s=sess, f=feeds: s.run(None, f), repeats, warmup=3)
    return samples, export_s


def retest(samples: list[list[float]], rounds: int, repeats: int) -> dict[str, float]:
    """The measurement's own repeatability: Spearman between the even and the odd rounds' figures."""
    from scipy.stats import spearmanr

    if rounds < 2:
        return {}
    halves = [[[t for r in range(rounds) if r % 2 == h for t in s[r * repeats:(r + 1) * repeats]] for s in samples]
              for h in (0, 1)]
    return {stat: float(spearmanr([pick(s) for s in halves[0]], [pick(s) for s in halves[1]]).statistic)
            for stat, pick in STATS.items()}


def _spread(s: list[float]) -> float:
    q = statistics.quantiles(s, n=4)
    return (q[2] - q[0]) / statistics.median(s)


def run_space(name: str, n: int, rounds: int, repeats: int, seed: int, save: str | None = None) -> dict[str, Any]:
    """Measure ``n`` subnets of one space and cross-validate both predictors on them."""
    build, pattern, cands, size = SPACES[name]
    torch.manual_seed(seed)
    x = torch.randn(1, 3, size, size)
    sn = fxnas.searchify(build().eval(), pattern, cands, x)
    space = sn.space
    archs = distinct_archs(space, n, seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        samples, export_s = measure_subnets(sn, archs, x, rounds, repeats, Path(tmp))
        measure_s = time.perf_counter() - t0 - export_s
        cache = Path(tmp) / "latency.sqlite"
        trees, timed, took = {}, {}, {}
        for stat in STATS:  # the second statistic reads every timing from the cache the first one filled
            t0 = time.perf_counter()
            prof = LatencyProfiler("onnxruntime", cache=cache, repeats=30, warmup=5, threads=1, statistic=stat)
            trees[stat] = latency_tree(sn, prof)
            took[stat], timed[stat] = time.perf_counter() - t0, prof.measured
    static = StaticFeatures(GraphCost(sn))

    results: dict[str, dict[str, dict[str, float]]] = {}
    for stat, pick in STATS.items():
        y = [pick(s) for s in samples]
        tree = trees[stat]
        table = TablePredictor(tree, space)

        def hybrid(a: dict[str, Any], t: TablePredictor = table) -> list[float]:
            return [*static(a), t.table_sum(a)]

        results[stat] = {
            "table": cross_validate(lambda t=tree: TablePredictor(t, space), archs, y)[0],
            "table, scale fit": cross_validate(lambda t=tree: TablePredictor(t, space, fit_scale=True), archs, y)[0],
            "table, raw sum": prediction_quality(table.predict_many(archs), y),
            "xgboost": cross_validate(lambda: XGBoostPredictor(space, seed=seed), archs, y)[0],
            "xgboost + static counts": cross_validate(
                lambda: XGBoostPredictor(space, extra=static, seed=seed), archs, y)[0],
            "xgboost + static + table": cross_validate(
                lambda f=hybrid: XGBoostPredictor(space, extra=f, seed=seed), archs, y)[0],
        }
    if save is not None:
        data = {"archs": archs, "samples_ms": samples,
                "table_ms": {stat: [TablePredictor(trees[stat], space).table_sum(a) for a in archs] for stat in STATS},
                "static": [static(a) for a in archs]}
        Path(save).with_suffix(f".{name}.json").write_text(json.dumps(data))
    y = [statistics.median(s) for s in samples]
    return {"name": name, "size": size, "slots": len(space), "y": y, "retest": retest(samples, rounds, repeats),
            "spread": statistics.median(_spread(s) for s in samples), "export_s": export_s,
            "measure_s": measure_s, "took": took, "timed": timed, "results": results}


STATS = {"median": statistics.median, "min": min}


def main() -> None:
    """Print Spearman and MAPE of both predictors on both spaces."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subnets", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per subnet per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spaces", default=",".join(SPACES))
    ap.add_argument("--quick", action="store_true", help="20 subnets, 2 rounds (a smoke run)")
    ap.add_argument("--save", default=None, help="write archs and timings to SAVE.<space>.json")
    a = ap.parse_args()
    if a.quick:
        a.subnets, a.rounds = 20, 2
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    for name in a.spaces.split(","):
        r = run_space(name, a.subnets, a.rounds, a.repeats, a.seed, a.save)
        y = r["y"]
        print(f"\n{name} space ({r['slots']} slots, input {r['size']}x{r['size']}): {len(y)} subnets, "
              f"latency {min(y):.2f}-{max(y):.2f} ms (median {statistics.median(y):.2f}), median spread "
              f"(IQR/median) {r['spread']:.1%}")
        print(f"  export {r['export_s']:.0f} s, timing {r['measure_s']:.0f} s ({a.rounds} rounds x {a.repeats}); "
              "repeatability (Spearman, even vs odd rounds): "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["retest"].items()))
        for stat, secs in r["took"].items():
            print(f"  latency table ({stat}): {secs:.1f} s, {r['timed'][stat]} ops timed")
        print(f"  {'predictor':<26} {'statistic':>9} {'Spearman':>9} {'MAPE %':>8}")
        for stat, rows in r["results"].items():
            for k, q in rows.items():
                print(f"  {k:<26} {stat:>9} {q['spearman']:>9.3f} {q['mape']:>8.1f}")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s; targets: Spearman >= 0.9, MAPE <= 10 %")


if __name__ == "__main__":
    main()

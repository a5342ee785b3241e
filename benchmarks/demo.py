"""Time the README demo as a user runs it: ``fxnas search -c demo`` in a fresh process, start to finish.

Run: python benchmarks/demo.py [--omp 1,2] [--repeats 1] [-o KEY=VALUE ...]
Each run gets OMP_NUM_THREADS from ``--omp`` (the machine default a user may have); the demo fixes its own
thread count, so the accuracy must not change with it. Prints wall and CPU seconds (the CPU time of the
child process, which a busy machine inflates less than the wall time), the exported subnet's test accuracy,
and the load average before each run (how busy the machine was).
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def read_test_accuracy(out_dir: Path) -> float | None:
    """The exported subnet's test accuracy, read from the run's log.txt (None when the run logged none)."""
    for line in (out_dir / "log.txt").read_text().splitlines():
        _, sep, rest = line.partition(" best arch on test: ")
        if sep:
            return float(ast.literal_eval(rest)["acc"])
    return None


def run_demo(omp: str, overrides: list[str], root: Path) -> tuple[float, float, float | None]:
    """(wall s, CPU s, test accuracy) of one ``fxnas search -c demo`` with OMP_NUM_THREADS=omp."""
    env = {**os.environ, "OMP_NUM_THREADS": omp}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "fxnas", "search", "-c", "demo", "--quiet", "--out-root", str(root)]
    for o in overrides:
        cmd += ["-o", o]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, read_test_accuracy(root / "demo")


def main() -> None:
    """Run the demo for each OMP_NUM_THREADS value and repeat; print one line per run."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--omp", default="1,2", help="OMP_NUM_THREADS values, comma-separated")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("-o", "--override", dest="overrides", action="append", default=[],
                    help="a config override passed to the demo (repeatable)")
    a = ap.parse_args()
    print(f"{'OMP_NUM_THREADS':>15} {'load avg':>8} {'wall s':>7} {'CPU s':>6} {'test acc %':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            for omp in a.omp.split(","):
                load = os.getloadavg()[0]
                wall, cpu, acc = run_demo(omp, a.overrides, Path(tmp) / f"{omp}-{i}")
                shown = "-" if acc is None else f"{acc:.2f}"
                print(f"{omp:>15} {load:8.2f} {wall:7.1f} {cpu:6.1f} {shown:>10}", flush=True)


if __name__ == "__main__":
    main()

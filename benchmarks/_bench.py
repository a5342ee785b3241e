"""Timing helpers shared by the benchmark scripts: alternated rounds, per-round ratios, the machine's load.

Every figure a script prints is a ratio of two timings taken in the same run. Within a round each contender
runs ``reps`` times (its median is the round's figure); the order of the contenders alternates between
rounds (A B, B A, A B...), so a slow phase of a loaded machine hits both. A ratio is the median over rounds
of the per-round ratios, with its interquartile range.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch


def single_thread() -> None:
    """One torch thread (the figures compare Python overhead and kernels, not thread scheduling)."""
    torch.set_num_threads(1)


def machine() -> str:
    """A line naming the torch threads, CPU count and the load average while the script ran."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs, load {load}"


def alternate(fns: Mapping[str, Callable[[], Any]], rounds: int, reps: int = 3,
              warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each of ``fns``: one median of ``reps`` calls per round, the order alternating."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                fns[name]()
                times.append(time.perf_counter() - t)
            out[name].append(statistics.median(times))
    return out


def ratio(times: Mapping[str, list[float]], num: str, den: str | list[str]) -> tuple[float, float, float]:
    """(median, 25th, 75th percentile) over rounds of times[num] / times[den] (den: one name or a sum of names)."""
    dens = [den] if isinstance(den, str) else list(den)
    per_round = [n / sum(times[d][i] for d in dens) for i, n in enumerate(times[num])]
    if len(per_round) < 2:
        return per_round[0], per_round[0], per_round[0]
    q = statistics.quantiles(per_round, n=4)
    return statistics.median(per_round), q[0], q[2]


def fmt_ratio(r: tuple[float, float, float], target: str = "") -> str:
    """'1.003x (IQR 0.99-1.01)' plus the target, when given."""
    text = f"{r[0]:.3f}x (IQR {r[1]:.3f}-{r[2]:.3f})"
    return f"{text}  target {target}" if target else text


def ms(times: list[float]) -> float:
    """Median milliseconds of a list of seconds."""
    return 1e3 * statistics.median(times)

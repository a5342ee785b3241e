"""The in-process discrete search loop (propose → evaluate → step); fxnas.async_loop runs it on workers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DivergedError
from .optim.base import Optimizer, Result, arch_key


@dataclass
class Guarded:
    """An evaluate function whose failures become failed Results instead of ending the search.

    A training that diverges (DivergedError, FloatingPointError) or a non-finite metric makes the arch a
    failed result (``Result.failure``) with the reason; other errors are bugs or bad config and propagate.
    Plain data around a picklable function, so it travels to worker processes (fxnas.async_loop).
    """

    fn: Callable[[dict], Mapping[str, float] | Result]

    def __call__(self, arch: dict) -> Result:
        try:
            out = self.fn(arch)
        except (DivergedError, FloatingPointError) as exc:
            return Result.failure(arch, f"{type(exc).__name__}: {exc}")
        r = out if isinstance(out, Result) else Result(dict(arch), {m: float(v) for m, v in out.items()})
        bad = [k for k, v in r.metrics.items() if not math.isfinite(v)]
        if bad and not r.failed:
            return Result.failure(arch, f"metric {bad[0]} is {r.metrics[bad[0]]}", r.info)
        return r


def discrete_loop(optimizer: Optimizer, evaluate_many: Callable[[list[dict]], list[Any]], budget: int,
                  batch_size: int, cache: dict[tuple, Result], counts: dict[str, int],
                  on_result: Callable[[Result], Result] = lambda r: r,
                  on_batch: Callable[[], Any] = lambda: None) -> None:
    """The one propose → evaluate → step loop (Experiment.evaluate_loop; Table.search without its files).

    Stops after ``budget`` distinct archs, when the optimizer proposes none, or after ``10 * budget + 100``
    proposals. Archs in ``cache`` (arch_key → Result) are not evaluated again; ``counts`` ({evaluated,
    proposed}) is updated in place so a checkpoint taken in ``on_batch`` can resume the loop.
    """
    max_proposals = 10 * budget + 100  # an optimizer that only repeats itself must still stop
    while counts["evaluated"] < budget and counts["proposed"] < max_proposals:
        archs = optimizer.next(min(batch_size, budget - counts["evaluated"]))
        if not archs:
            break  # the space is exhausted
        counts["proposed"] += len(archs)
        new: dict[tuple, dict] = {}
        for a in archs:
            k = arch_key(a)
            if k not in cache and k not in new:
                new[k] = dict(a)
        for (k, a), out in zip(new.items(), evaluate_many(list(new.values()))):
            r = out if isinstance(out, Result) else Result(dict(a), {m: float(v) for m, v in out.items()})
            cache[k] = on_result(r)
            counts["evaluated"] += 1
        optimizer.step([cache[arch_key(a)] for a in archs])
        on_batch()
